//! The database connection is verified (libpq's `verify-full`), by downstream and by `provision`
//! itself: a PostgreSQL that takes TCP connections over TLS only, with a certificate from a CA
//! this test makes. With that CA named in `database.ca_file`, `up` makes the table and records
//! arrive, over TLS. When the server's certificate is replaced by one from another CA, downstream
//! refuses the server (its log says why, the batch goes to the dead letters, the record stays in
//! the table, no row is written) and so does `up` (saying why and what to change); naming the new
//! CA repairs both.
//!
//! The server is a PostgreSQL cluster of the test's own, beside the local cloud's (which stays as
//! it is for the other tests).

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const DATABASE: &str = "tls_records";

/// Runs `program` as the `postgres` user when this test runs as root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The installed PostgreSQL's `bin` folder (the newest).
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// Runs `openssl` with `args` (split at spaces) in `dir`.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").args(args.split(' ')).current_dir(dir).output().expect("running openssl");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A new P-256 key and what `openssl req` makes with it.
const NEW_KEY: &str = "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

/// A CA of the test's own: `<name>.pem` and `<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!(
            "{NEW_KEY} -x509 -days 2 -keyout {name}.key -out {name}.pem -subj /CN=provision-test-{name} \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
    );
}

/// The server's certificate for 127.0.0.1, signed by CA `ca`: `server.pem`, `server.key`.
fn make_server_certificate(dir: &Path, ca: &str) {
    openssl(dir, &format!("{NEW_KEY} -keyout server.key -out server.csr -subj /CN=127.0.0.1"));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &format!(
            "x509 -req -in server.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -out server.pem -days 2 \
             -extfile server.ext"
        ),
    );
}

/// A PostgreSQL cluster with TLS on, on a port of its own; stopped and removed when dropped.
struct TlsPostgres {
    dir: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status().unwrap();
            assert!(status.success(), "chown of {}", dir.display());
        }
        let bin = pg_bin();
        let data = dir.join("data");
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "pipeline", "--auth=trust", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        // TCP over TLS only; the test itself reads through the socket.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all all reject\n",
        )
        .unwrap();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={dir}/server.pem \
             -c ssl_key_file={dir}/server.key",
            dir = dir.display()
        );
        let server = Self { dir: dir.to_path_buf(), port };
        let out = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
        );
        server
    }

    /// A connection to `database` through the server's Unix socket (TCP takes TLS only).
    async fn connect(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::Config::new()
            .host_path(&self.dir)
            .port(self.port)
            .user("pipeline")
            .dbname(database)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connecting to the test's PostgreSQL");
        tokio::spawn(connection);
        client
    }

    async fn row_ids(&self) -> Vec<String> {
        match self.connect(DATABASE).await.query("SELECT id FROM records ORDER BY id", &[]).await {
            Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl TlsPostgres {
    /// Replaces the server's certificate by one CA `ca` signed, and ends the sessions open.
    async fn reissue(&self, ca: &str) {
        make_server_certificate(&self.dir, ca);
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.dir).status().unwrap();
        assert!(status.success() || unsafe { libc::geteuid() } != 0, "chown of {}", self.dir.display());
        let out =
            as_postgres(&pg_bin().join("pg_ctl")).arg("-D").arg(self.dir.join("data")).arg("reload").output().unwrap();
        assert!(out.status.success(), "pg_ctl reload: {}", String::from_utf8_lossy(&out.stderr));
        let ended = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND \
                     backend_type = 'client backend'";
        // The reload is a signal: wait until the server hands out the new certificate.
        let handed_out = || {
            let out = Command::new("openssl")
                .args(["s_client", "-starttls", "postgres", "-connect", &format!("127.0.0.1:{}", self.port)])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("running openssl s_client");
            String::from_utf8_lossy(&out.stdout).contains(&format!("provision-test-{ca}"))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !handed_out() {
            assert!(std::time::Instant::now() < deadline, "the server hands out the certificate of {ca}");
            std::thread::sleep(Duration::from_millis(200));
        }
        self.connect("postgres").await.batch_execute(ended).await.unwrap();
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `provision --json logs downstream` lines of the last minutes that hold `text`.
fn downstream_lines(stack: &TestStack, text: &str) -> Vec<String> {
    stack
        .ok(&["--json", "logs", "downstream", "--since", "10m", "--filter", text])
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok()?["message"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn downstream_and_provision_verify_the_database_certificate_against_the_ca_named() {
    let mut stack = TestStack::new("dbtls");
    let dir = std::env::temp_dir().join(format!("provision-tls-{}", stack.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca(&dir, "ca-one");
    make_ca(&dir, "ca-other");
    make_server_certificate(&dir, "ca-one");
    let server = TlsPostgres::start(&dir);
    server.connect("postgres").await.batch_execute(&format!("CREATE DATABASE {DATABASE}")).await.unwrap();
    let settings = |ca: &str| {
        json!({
            "database": {
                "url": format!("postgres://pipeline@127.0.0.1:{}/{DATABASE}", server.port),
                "ca_file": dir.join(format!("{ca}.pem")).display().to_string(),
            },
            // A batch that keeps failing goes to the dead letters after a minute.
            "table_mapping": { "maximum_record_age_s": 60, "maximum_retry_attempts": 1 },
        })
    };

    // The CA that signed the server's certificate: records arrive, over TLS.
    stack.set_settings(&settings("ca-one"));
    stack.up();
    let url = stack.output("api", "url");
    for i in 0..3 {
        let answer = http().post_json(&url, &json!({"id": format!("tls-{i}"), "message": "m", "timestamp": 1})).await;
        assert_eq!(answer.unwrap().status, 200);
    }
    let arrived = eventually(Duration::from_secs(120), || async { server.row_ids().await.len() == 3 }).await;
    assert!(arrived, "records arrive with the server's CA named: {:?}", server.row_ids().await);
    let encrypted: i64 = server
        .connect(DATABASE)
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'downstream' AND s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "downstream's connection is encrypted");

    // The server's certificate replaced by one from another CA: refused, and nothing is lost.
    server.reissue("ca-other").await;
    let answer = http().post_json(&url, &json!({"id": "refused-1", "message": "m", "timestamp": 1})).await;
    assert_eq!(answer.unwrap().status, 200);
    let mut said = Vec::new();
    let explained = eventually(Duration::from_secs(60), || {
        said = downstream_lines(&stack, "not trusted");
        let found = said.iter().any(|line| line.contains("database.ca_file"));
        async move { found }
    })
    .await;
    assert!(explained, "downstream's log says why the server is refused: {said:#?}");
    let cloud = cloud().await;
    let letters = std::sync::Mutex::new(Vec::new());
    let dead_letters = stack.output("dead-letters", "url");
    let dead_lettered = eventually(Duration::from_secs(180), || async {
        let drained = drain_queue(&cloud, &dead_letters).await;
        let mut letters = letters.lock().unwrap();
        letters.extend(drained);
        !letters.is_empty()
    })
    .await;
    assert!(dead_lettered, "the refused batch goes to the dead letters");
    let item = cloud
        .dynamodb
        .get_item()
        .table_name(format!("{}-records", stack.name))
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S("refused-1".into()))
        .send()
        .await
        .unwrap();
    assert!(item.item().is_some(), "the refused record is still in the table");
    assert!(!server.row_ids().await.contains(&"refused-1".to_string()), "no row from a refused server");

    // `provision` refuses the server too, before changing anything, and says what to change.
    let state_file = stack.state_dir.join(format!("{}.json", stack.name));
    let before = std::fs::read(&state_file).unwrap();
    let refused = stack.provision(&["up", "--yes"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "up against an untrusted server fails");
    assert!(stderr.contains("not trusted") && stderr.contains("database.ca_file"), "up says why: {stderr}");
    assert!(std::fs::read(&state_file).unwrap() == before, "the refused up changed nothing, in the state either");

    // Naming the new CA repairs both.
    stack.set_settings(&settings("ca-other"));
    stack.up();
    let answer = http().post_json(&url, &json!({"id": "after-1", "message": "m", "timestamp": 1})).await;
    assert_eq!(answer.unwrap().status, 200);
    let arrived =
        eventually(Duration::from_secs(120), || async { server.row_ids().await.contains(&"after-1".into()) }).await;
    assert!(arrived, "records arrive again with the new CA named: {:?}", server.row_ids().await);
    stack.down();
    drop(server);
}
