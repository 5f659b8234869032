//! SIGHUP in agent mode: re-read the configuration and apply what can
//! change without restarting the programs: the rules (user space and the
//! in-kernel deny table) and the exporters. Recording stays attached the
//! whole time, so no event is lost; the consumer swaps rules and exporters
//! between two batches. A bad file changes nothing.
use std::sync::mpsc::SyncSender;

use super::{consumer::Msg, options::AgentSetup, setup};
use crate::{agent::config::Config, loader::Probes};

/// Applies the configuration file of `a` over `current`.
pub fn apply(a: &AgentSetup, current: &mut Config, probes: &mut Probes, ctl: &SyncSender<Msg>) {
    let new = match Config::load(&a.path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("reload: {e}; keeping the running configuration");
            return;
        }
    };
    let rules = if new.policy.rules.is_empty() {
        None
    } else {
        match crate::policy::load(&new.policy.rules) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("reload: {e}; keeping the running configuration");
                return;
            }
        }
    };
    // The deny program is attached at start only when kernel rules were
    // given then.
    let deny = setup::deny_rules_of(rules.as_ref());
    let had_kernel_rules = !setup::deny_rules_of(
        (!current.policy.rules.is_empty())
            .then(|| crate::policy::load(&current.policy.rules).ok())
            .flatten()
            .as_ref(),
    )
    .is_empty();
    if had_kernel_rules {
        if let Err(e) = probes.set_deny(&deny) {
            tracing::warn!("reload: in-kernel rules: {e}");
        }
    } else if !deny.is_empty() {
        tracing::warn!(
            "reload: in-kernel rules need a restart to be attached; until then they act from user space"
        );
    }
    let exporters_changed = new.otlp != current.otlp
        || new.kafka != current.kafka
        || new.syslog != current.syslog
        || new.host != current.host;
    let exporters = if exporters_changed {
        match crate::export::Exporters::start(&new, &new.host_name()) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!("reload: exporters: {e}; keeping the running ones");
                None
            }
        }
    } else {
        None
    };
    for (what, changed) in [
        ("[targets]", new.targets != current.targets),
        ("[recording]", new.recording != current.recording),
        ("[prometheus]", new.prometheus != current.prometheus),
        ("[log]", new.log != current.log),
        ("[policy] analyser", {
            let (n, c) = (&new.policy, &current.policy);
            n.analyser != c.analyser
                || n.analyser_token_file != c.analyser_token_file
                || n.analyser_failure != c.analyser_failure
                || n.analyser_timeout != c.analyser_timeout
        }),
    ] {
        if changed {
            tracing::warn!("reload: {what} changed: it takes effect at the next restart");
        }
    }
    let n_rules = rules.as_ref().map_or(0, |r| r.rules.len());
    let _ = ctl.send(Msg::Reload {
        rules: Some(rules),
        exporters,
    });
    tracing::info!(
        "reload: {} applied ({n_rules} rules{})",
        a.path.display(),
        if exporters_changed {
            ", exporters restarted"
        } else {
            ""
        }
    );
    *current = new;
}
