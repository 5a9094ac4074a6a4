use anyhow::{Context, Result};

use crate::cli::{Cli, RunArgs};
use crate::container::{self, foreground};

pub fn run(cli: &Cli, a: &RunArgs) -> Result<i32> {
    let id = &a.create.id;
    let mut opts = super::create::options(cli, &a.create)?;
    opts.foreground = !a.detach;
    let dir = crate::container::state::StateDir::new(&cli.root, id);
    // Signals that arrive from here on are queued for the container, not acted on by berth.
    let forwarder = (!a.detach).then(foreground::Forwarder::block).transpose()?;
    let created =
        container::create::create_container(&opts).with_context(|| format!("container {id}"))?;
    if let Err(e) = container::start(&dir) {
        // The terminal (if any) is restored before the error is printed.
        drop(created.relay);
        let _ = container::delete(&dir, true);
        return Err(e).with_context(|| format!("container {id}"));
    }
    let Some(forwarder) = forwarder else {
        return Ok(0);
    };
    let code = match created.relay {
        Some(relay) => forwarder.relay(created.pid, relay)?,
        None => forwarder.wait(created.pid)?,
    };
    if !a.keep {
        container::delete(&dir, true).with_context(|| format!("container {id}"))?;
    }
    Ok(code)
}
