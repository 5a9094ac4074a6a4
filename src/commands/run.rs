use anyhow::{Context, Result};

use crate::cli::{Cli, RunArgs};
use crate::container::{self, foreground};

pub fn run(cli: &Cli, a: &RunArgs) -> Result<i32> {
    let id = &a.create.id;
    let mut opts = super::create::options(cli, &a.create);
    opts.inherit_terminal = !a.detach && a.create.console_socket.is_none();
    let dir = crate::container::state::StateDir::new(&cli.root, id);
    // Before the signalfd below takes the lowest free number.
    container::create::check_preserved_fds(a.create.preserve_fds)
        .with_context(|| format!("container {id}"))?;
    // Signals that arrive from here on are queued for the container, not acted on by berth.
    let forwarder = (!a.detach).then(foreground::Forwarder::block).transpose()?;
    let pid = container::create(&opts).with_context(|| format!("container {id}"))?;
    if let Err(e) = container::start(&dir) {
        let _ = container::delete(&dir, true);
        return Err(e).with_context(|| format!("container {id}"));
    }
    let Some(forwarder) = forwarder else {
        return Ok(0);
    };
    let code = forwarder.wait(pid)?;
    if !a.keep {
        container::delete(&dir, true).with_context(|| format!("container {id}"))?;
    }
    Ok(code)
}
