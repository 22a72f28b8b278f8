//! The binaries `provision` deploys to AWS (every program's) must start on Lambda's `provided.al2023` runtime,
//! whose glibc is 2.34: a portable build asks for no newer symbol version, whatever the host has.
//! Cross-checked with binutils' `readelf`, an independent reader of the ELF version needs.

use provisioner::artifact::{self, BuildConfig, LAMBDA_GLIBC};
use std::path::PathBuf;
use std::process::Command;

fn newest_glibc_per_readelf(binary: &PathBuf) -> (u32, u32) {
    let out =
        Command::new("readelf").arg("--version-info").arg(binary).output().expect("readelf (binutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .max()
        .expect("a dynamically linked binary needs some glibc version")
}

#[test]
fn portable_function_binaries_need_no_glibc_newer_than_lambdas() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let config = BuildConfig {
        workspace,
        profile: "dev".into(),
        portable_arch: Some("x86_64".into()),
        for_local_endpoint: false,
    };
    let binaries = provisioner::programs::every_function_binary(&config).unwrap();
    let binaries: Vec<&str> = binaries.iter().map(String::as_str).collect();
    artifact::build(&config, &binaries, &[]).expect("portable build (scripts/build-tools installs its tools)");
    for function in binaries {
        let path = config.binary_path(function);
        assert!(path.to_string_lossy().contains("x86_64-unknown-linux-gnu"), "{}", path.display());
        let by_readelf = newest_glibc_per_readelf(&path);
        let by_scan = artifact::newest_glibc_needed(&std::fs::read(&path).unwrap());
        assert_eq!(by_scan, Some(by_readelf), "{function}: provision's check agrees with readelf");
        assert!(by_readelf <= LAMBDA_GLIBC, "{function} needs glibc {by_readelf:?}, Lambda has {LAMBDA_GLIBC:?}");
        let zip = artifact::package(&config, function).unwrap();
        assert!(
            zip.zip_path.to_string_lossy().contains("/lambda/x86_64-unknown-linux-gnu/"),
            "portable zips live apart from native ones"
        );
    }
}
