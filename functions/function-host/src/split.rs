//! The split build that hot-swap uses on a local emulator: a function's host (the Lambda runtime,
//! the SDK clients, I/O) is the `bootstrap` executable, and its logic is a small shared library
//! beside it, [`LOGIC_LIBRARY`]. An edit of the logic then compiles, links, zips and uploads a
//! library of a few hundred kilobytes instead of relinking the whole 15 MB binary; the host, built
//! once, is reused byte for byte.
//!
//! Both link the Rust standard library dynamically (it is shipped beside them), so there is one
//! allocator and one panic runtime: a panic in the logic is caught and reported by the Lambda
//! runtime exactly as in a single binary. Host and library are always built by the same compiler
//! from the same compiled dependencies, so the logic's types have the same layout on both sides.
//!
//! A function's `main.rs` states its entry point once with `function_main::main!`, which picks
//! one of three builds by the `provision_split` cfg the provisioner passes: none (one static
//! binary, as `cargo build` makes it and as AWS gets it), `"host"` (the bootstrap, which calls
//! [`load`]) or `"logic"` (the library exporting the logic).

use std::ffi::{c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The file name of the logic library, beside `bootstrap`.
pub const LOGIC_LIBRARY: &str = "liblogic.so";
/// The symbol of the function returning the logic (`fn() -> Logic`), defined by `function_main::main!`.
pub const LOGIC_SYMBOL: &str = "provision_function_logic";
/// The symbol of the function naming the logic's type (`fn() -> &'static str`).
pub const LOGIC_TYPE_SYMBOL: &str = "provision_function_logic_type";

/// Loads the logic from [`LOGIC_LIBRARY`] beside the running executable. The library must have
/// been built for the same type `T` as this host: a library of another function, or of an older
/// shape of the logic, is refused with what to rebuild.
pub fn load<T: 'static>() -> Result<T, crate::Error> {
    let path = library_path()?;
    // SAFETY: dlopen on a NUL-terminated path; the library is never closed, so the functions
    // and statics it hands out stay valid for the life of the process.
    let handle = unsafe {
        let path_c = CString::new(path.as_os_str().as_bytes())?;
        libc::dlopen(path_c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL)
    };
    if handle.is_null() {
        return Err(format!("loading the function's logic from {}: {}", path.display(), last_error()).into());
    }
    // SAFETY: both symbols are defined by `function_main::main!` with exactly these signatures.
    let (logic_type, logic) = unsafe {
        let logic_type: fn() -> &'static str = std::mem::transmute(symbol(handle, LOGIC_TYPE_SYMBOL, &path)?);
        let logic: fn() -> T = std::mem::transmute(symbol(handle, LOGIC_SYMBOL, &path)?);
        (logic_type, logic)
    };
    let expected = std::any::type_name::<T>();
    if logic_type() != expected {
        return Err(format!(
            "{} holds logic of type {} but this bootstrap runs {expected}: the two were built for different \
             functions or versions; rebuild and deploy both (`provision up`)",
            path.display(),
            logic_type()
        )
        .into());
    }
    Ok(logic())
}

fn library_path() -> Result<PathBuf, crate::Error> {
    let executable = std::env::current_exe().map_err(|e| format!("finding the running executable: {e}"))?;
    Ok(executable.parent().unwrap_or(Path::new("/")).join(LOGIC_LIBRARY))
}

unsafe fn symbol(handle: *mut c_void, name: &str, path: &Path) -> Result<*mut c_void, crate::Error> {
    let name_c = CString::new(name)?;
    let found = libc::dlsym(handle, name_c.as_ptr());
    if found.is_null() {
        return Err(format!(
            "{} does not define {name}: it was not built by `provision` as a function's logic",
            path.display()
        )
        .into());
    }
    Ok(found)
}

fn last_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message owned by the loader.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown error".into();
    }
    unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
}
