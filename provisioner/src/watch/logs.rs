//! What `watch` shows of the functions' logs: every warning and error as it happens, and the
//! first lines a function logs after its new code went live. A task of its own polls the logs
//! once a second ([`crate::logs::Follower`]), so the watch loop never waits on it.

use crate::cloud::Cloud;
use crate::logs::{print_line, Follower};
use crate::programs::DeclaredFunction;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many lines of a swapped function are shown after its swap.
const FIRST_LINES: usize = 3;

/// The handle the watch loop keeps on the log follower.
pub struct LogWatch {
    /// Per function, how many of its next lines to show whatever their level.
    show: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl LogWatch {
    /// Shows the next few lines each of `functions` logs (their first after a swap).
    pub fn show_next(&self, functions: &[String]) {
        let mut show = self.show.lock().expect("log watch");
        for function in functions {
            show.insert(function.clone(), FIRST_LINES);
        }
    }
}

/// Starts following the stack's function logs from now on.
pub fn spawn_follower(cloud: Arc<Cloud>, functions: &[DeclaredFunction]) -> LogWatch {
    let show: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let mut follower = Follower::new(functions, Duration::ZERO, None, false);
    let shown = show.clone();
    let colour = std::io::stdout().is_terminal();
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match follower.next_lines(&cloud).await {
                Ok(lines) => {
                    failing = false;
                    for line in lines {
                        let wanted = {
                            let mut show = shown.lock().expect("log watch");
                            match show.get_mut(&line.function) {
                                Some(left) if *left > 0 => {
                                    *left -= 1;
                                    true
                                }
                                _ => false,
                            }
                        };
                        if wanted || line.is_problem() {
                            print_line(&line, false, colour);
                        }
                    }
                }
                Err(err) if !failing => {
                    failing = true;
                    println!("note: cannot read the functions' logs ({err:#}); retrying");
                }
                Err(_) => {}
            }
        }
    });
    LogWatch { show }
}
