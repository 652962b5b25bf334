//! What apply shows while it works: on a terminal, a live line per change in flight (with its
//! elapsed time) under a done/total counter; elsewhere (CI, pipes), plain log lines. Waits the
//! Azure client reports (throttling, replication, long-running operations) appear as lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::apply::{Outcome, Progress};
use crate::engine::plan::Action;
use crate::providers::azure::Event;

fn doing(action: Action) -> &'static str {
    match action {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "destroying",
        Action::Adopt => "adopting",
        Action::NoOp | Action::Read => "reading",
    }
}

fn done(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "destroyed",
        Action::Adopt => "adopted",
        Action::NoOp | Action::Read => "read",
    }
}

/// One line for a client event, or none for events not worth a line.
pub fn event_line(event: &Event) -> Option<String> {
    match event {
        Event::Waiting {
            action,
            waiting_for,
            delay,
            ..
        } => Some(format!(
            "{action}: waiting for {waiting_for} (next try in {:.1} s)",
            delay.as_secs_f64()
        )),
        Event::Throttled { action, delay, .. } => Some(format!(
            "{action}: throttled by Azure, retrying in {:.1} s",
            delay.as_secs_f64()
        )),
        Event::Retrying {
            action,
            reason,
            delay,
            ..
        } => Some(format!(
            "{action}: {reason}, retrying in {:.1} s",
            delay.as_secs_f64()
        )),
        Event::Polling {
            action,
            status,
            elapsed,
        } => Some(format!(
            "{action}: {status} after {:.0} s",
            elapsed.as_secs_f64()
        )),
        Event::Limited {
            limit,
            per_second,
            measured,
        } => Some(format!(
            "{limit} are throttled by the provider: pacing them at {per_second:.1} per second ({})",
            if *measured {
                "measured from its answers"
            } else {
                "a first guess, to be measured"
            }
        )),
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The display. `live` draws bars on stderr; otherwise each start, end and wait is a line.
/// Bars appear only once [`Display::start`] is called (the plan is printed before that).
pub struct Display {
    live: bool,
    bars: Mutex<Option<(MultiProgress, ProgressBar)>>,
    lines: Mutex<HashMap<String, ProgressBar>>,
    quiet: bool,
}

impl Display {
    pub fn new(live: bool, quiet: bool) -> Self {
        Display {
            live: live && !quiet,
            bars: Mutex::new(None),
            lines: Mutex::new(HashMap::new()),
            quiet,
        }
    }

    /// Starts the live display for `total` changes.
    pub fn start(&self, total: usize) {
        if !self.live {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let counter = multi.add(ProgressBar::new(total as u64));
        counter.set_style(
            ProgressStyle::with_template("{prefix:.bold} {pos}/{len} changes done, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        counter.set_prefix("Applying:");
        counter.enable_steady_tick(Duration::from_millis(200));
        *self.bars.lock().unwrap_or_else(|p| p.into_inner()) = Some((multi, counter));
    }

    fn multi(&self) -> Option<(MultiProgress, ProgressBar)> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn println(&self, line: &str) {
        if self.quiet {
            return;
        }
        match self.multi() {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn progress(&self, event: &Progress) {
        match event {
            Progress::Started { address, action } => match self.multi() {
                Some((multi, _)) => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {msg} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(format!("{address}: {}…", doing(*action)));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.lines
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(address.to_string(), bar);
                }
                None => self.println(&format!("{address}: {}…", doing(*action))),
            },
            Progress::Finished {
                address,
                action,
                outcome,
                elapsed,
            } => {
                if let Some(bar) = self
                    .lines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&address.to_string())
                {
                    bar.finish_and_clear();
                    if let Some((multi, _)) = self.multi() {
                        multi.remove(&bar);
                    }
                }
                if let Some((_, counter)) = self.multi() {
                    counter.inc(1);
                }
                let line = match outcome {
                    Outcome::Applied | Outcome::Unchanged => {
                        format!("{address}: {} after {}", done(*action), seconds(*elapsed))
                    }
                    Outcome::Failed { message, .. } => {
                        format!("{address}: failed after {}: {message}", seconds(*elapsed))
                    }
                    Outcome::Skipped { because } => {
                        format!("{address}: skipped because {because} failed")
                    }
                    Outcome::Kept { because } => {
                        format!("{address}: kept because {because} did not apply")
                    }
                };
                self.println(&line);
            }
        }
    }

    pub fn event(&self, event: &Event) {
        if let Some(line) = event_line(event) {
            self.println(&format!("  {line}"));
        }
    }

    pub fn message(&self, line: &str) {
        self.println(line);
    }

    pub fn finish(&self) {
        if let Some((multi, counter)) = self.bars.lock().unwrap_or_else(|p| p.into_inner()).take() {
            counter.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_provider_reads_as_a_line() {
        let limited = |measured| Event::Limited {
            limit: "Microsoft.ManagedIdentity create/update requests in subscription s".into(),
            per_second: 0.8333,
            measured,
        };
        assert_eq!(
            event_line(&limited(true)).as_deref(),
            Some(
                "Microsoft.ManagedIdentity create/update requests in subscription s are throttled \
                 by the provider: pacing them at 0.8 per second (measured from its answers)"
            )
        );
        assert_eq!(
            event_line(&limited(false)).as_deref(),
            Some(
                "Microsoft.ManagedIdentity create/update requests in subscription s are throttled \
                 by the provider: pacing them at 0.8 per second (a first guess, to be measured)"
            )
        );
    }

    #[test]
    fn waits_read_as_lines() {
        let throttled = Event::Throttled {
            action: "create managed identity rg/a".into(),
            attempt: 2,
            delay: Duration::from_millis(1500),
        };
        assert_eq!(
            event_line(&throttled).as_deref(),
            Some("create managed identity rg/a: throttled by Azure, retrying in 1.5 s")
        );
    }
}
