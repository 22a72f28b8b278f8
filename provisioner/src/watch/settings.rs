//! A change of the settings file during `watch`: reloaded, checked, and applied in place when it
//! only touches function configuration or mapping settings (memory, timeout, batch size...),
//! with no prompt and a one-line summary; a change that would create, replace or delete anything
//! is printed as a plan with the hint to run `up`. A file that does not parse changes nothing.

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
    match commands::hot_apply(&next, cloud).await {
        Ok(HotApply::NothingToDo) => println!("settings changed: the stack already matches"),
        Ok(HotApply::Applied(changes)) => {
            let what: Vec<String> =
                changes.iter().map(|(id, fields)| format!("{id} ({})", fields.join(", "))).collect();
            println!("settings applied in {:.1} s: {}", started.elapsed().as_secs_f64(), what.join(", "));
        }
        Ok(HotApply::NeedsUp(plan)) => {
            print!("{plan}");
            println!("these settings change more than configuration: run `provision up` to apply them; still watching");
        }
        Err(err) => {
            // Kept as not applied: saving the file again tries again.
            println!("settings not applied: {err:#}; save the file again to retry; still watching");
            return;
        }
    }
    *ctx = next;
}
