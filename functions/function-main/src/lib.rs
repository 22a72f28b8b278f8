//! A function's entry point, written once for the three builds the provisioner makes of it
//! (function-host's `split` module tells why):
//! - no `provision_split` cfg: `main` runs the host with the logic linked in, one static binary
//!   (what `cargo build` makes, and what AWS gets);
//! - `provision_split="host"`: `main` loads the logic from the library beside the executable;
//! - `provision_split="logic"`: no `main`; the library exports the logic and its type's name.
//!
//! This crate has no dependencies and the logic's types live in crates without the host's: a
//! logic library then links against nothing of the runtime or the SDK, which keeps its link, and
//! so a hot-swap, short. The binary crate must depend on `function-host` (the host builds call it).

#![no_std]

/// A function's entry point, written once for its three builds: `main!(host::run, Logic, Logic {
/// ... })` runs `host::run` with the logic value, linked in or loaded from the logic library.
#[macro_export]
macro_rules! main {
    ($run:path, $logic_type:ty, $logic:expr $(,)?) => {
        #[cfg(not(any(provision_split = "host", provision_split = "logic")))]
        fn main() -> ::core::result::Result<(), ::function_host::Error> {
            $run($logic)
        }

        #[cfg(provision_split = "host")]
        fn main() -> ::core::result::Result<(), ::function_host::Error> {
            $run(::function_host::split::load::<$logic_type>()?)
        }

        /// The function's logic, for the host that loads this library.
        #[cfg(provision_split = "logic")]
        #[no_mangle]
        pub fn provision_function_logic() -> $logic_type {
            $logic
        }

        /// The logic's type, checked by the host before it calls [`provision_function_logic`].
        #[cfg(provision_split = "logic")]
        #[no_mangle]
        pub fn provision_function_logic_type() -> &'static str {
            ::core::any::type_name::<$logic_type>()
        }
    };
}
