//! A change of the settings file during `watch`: reloaded, checked, and applied in place when it
//! only touches function configuration or mapping settings (memory, timeout, batch size...),
//! with no prompt and a one-line summary; a change that would create, replace or delete anything
//! is printed as a plan with the hint to run `up`. A file that does not parse changes nothing.
//! An edit of the program's own crate is applied the same way.

use crate::cloud::Cloud;
use crate::commands::{self, Context, HotApply};
use crate::settings::Settings;
use std::sync::Arc;
use std::time::Instant;

/// Reloads the settings into `ctx` and applies what can be applied in place.
pub async fn apply_change(ctx: &mut Context, cloud: &Arc<Cloud>) {
    let started = Instant::now();
    let settings = match Settings::load(ctx.settings_path.as_deref())
        .and_then(|settings| ctx.program.check_settings(&settings).map(|()| settings))
    {
        Ok(settings) => settings,
        Err(err) => {
            println!("settings not applied: {err:#}\nfix the file and save again; still watching");
            return;
        }
    };
    if settings == ctx.settings {
        return;
    }
    let mut next = ctx.clone();
    next.settings = settings;
    if report(commands::hot_apply(&next, cloud).await, "settings", started) {
        *ctx = next;
    }
}

/// Applies an edit of the program's own crate (rebuilt and run again as every command does) as
/// a settings edit is applied: in place what only changes functions' configuration or
/// mappings, the rest printed as a plan for `up`.
pub async fn apply_program_change(ctx: &Context, cloud: &Arc<Cloud>) {
    let started = Instant::now();
    report(commands::hot_apply(ctx, cloud).await, "program", started);
}

/// Says what a hot apply of a `what` edit did; false when it failed (saving again retries).
fn report(result: anyhow::Result<HotApply>, what: &str, started: Instant) -> bool {
    match result {
        Ok(HotApply::NothingToDo) => println!("{what} changed: the stack already matches"),
        Ok(HotApply::Applied(changes)) => {
            let done: Vec<String> =
                changes.iter().map(|(id, fields)| format!("{id} ({})", fields.join(", "))).collect();
            println!("{what} applied in {:.1} s: {}", started.elapsed().as_secs_f64(), done.join(", "));
        }
        Ok(HotApply::NeedsUp(plan)) => {
            print!("{plan}");
            println!(
                "this {what} edit changes more than configuration: run `provision up` to apply it; still watching"
            );
        }
        Err(err) => {
            println!("{what} not applied: {err:#}; save the file again to retry; still watching");
            return false;
        }
    }
    true
}
