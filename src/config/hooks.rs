//! config.json's `hooks`, by phase, each hook translated once (its argv, its environment, its timeout as a
//! duration). Running them is `process::hooks`'s job.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }
}

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub path: PathBuf,
    /// `args` as given: argv[0] first (empty: the program gets its path as argv[0]).
    pub args: Vec<String>,
    /// `env`; `None`: what its phase inherits (see `process::hooks`).
    pub env: Option<Vec<String>>,
    /// `timeout` in seconds when positive; `None`: no limit.
    pub timeout: Option<Duration>,
}

/// The hooks of each phase, in config order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    /// Translates config.json's `hooks` (taken, not copied).
    pub fn from_oci(hooks: Option<oci_spec::runtime::Hooks>) -> Hooks {
        let Some(mut h) = hooks else {
            return Hooks::default();
        };
        let take = |v: &mut Option<Vec<oci_spec::runtime::Hook>>| {
            v.take().into_iter().flatten().map(hook).collect()
        };
        #[allow(deprecated)]
        let prestart = take(h.prestart_mut());
        Hooks {
            prestart,
            create_runtime: take(h.create_runtime_mut()),
            create_container: take(h.create_container_mut()),
            start_container: take(h.start_container_mut()),
            poststart: take(h.poststart_mut()),
            poststop: take(h.poststop_mut()),
        }
    }

    pub fn of(&self, phase: Phase) -> &[Hook] {
        match phase {
            Phase::Prestart => &self.prestart,
            Phase::CreateRuntime => &self.create_runtime,
            Phase::CreateContainer => &self.create_container,
            Phase::StartContainer => &self.start_container,
            Phase::Poststart => &self.poststart,
            Phase::Poststop => &self.poststop,
        }
    }

    pub fn is_empty(&self) -> bool {
        [
            &self.prestart,
            &self.create_runtime,
            &self.create_container,
            &self.start_container,
            &self.poststart,
            &self.poststop,
        ]
        .iter()
        .all(|v| v.is_empty())
    }
}

fn hook(mut h: oci_spec::runtime::Hook) -> Hook {
    Hook {
        path: std::mem::take(h.path_mut()),
        args: h.args_mut().take().unwrap_or_default(),
        env: h.env_mut().take(),
        timeout: h
            .timeout()
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_translate_by_phase_with_their_timeouts() {
        let h: oci_spec::runtime::Hooks = serde_json::from_value(serde_json::json!({
            "prestart": [{"path": "/a", "args": ["a", "1"], "timeout": 5}],
            "poststop": [{"path": "/b", "env": ["X=1"], "timeout": 0}, {"path": "/c", "timeout": -3}]
        }))
        .unwrap();
        let hooks = Hooks::from_oci(Some(h));
        assert!(!hooks.is_empty());
        assert_eq!(
            hooks.of(Phase::Prestart),
            [Hook {
                path: "/a".into(),
                args: vec!["a".into(), "1".into()],
                env: None,
                timeout: Some(Duration::from_secs(5)),
            }]
        );
        let post = hooks.of(Phase::Poststop);
        assert_eq!(post.len(), 2);
        assert_eq!(post[0].env, Some(vec!["X=1".to_string()]));
        // The spec asks for a positive timeout; berth has treated others as none, and still does.
        assert!(post.iter().all(|h| h.timeout.is_none()));
        assert!(hooks.of(Phase::CreateRuntime).is_empty());
        assert!(Hooks::from_oci(None).is_empty());
    }
}
