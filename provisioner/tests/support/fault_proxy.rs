//! A fault-injecting HTTP proxy in front of the local cloud: it answers a chosen share of AWS API
//! calls, or chosen operations, with what real AWS answers on a bad day (503 ServiceUnavailable,
//! throttling in each protocol's own shape), with a delay, or with a permanent refusal, and
//! forwards the rest. `provision` is pointed at it with `--endpoint-url`.
//!
//! It runs on a thread and a runtime of its own, so tests that wait for `provision` with a
//! blocking call do not stall it. Calls that are not AWS API calls (the emulators' own
//! `/_localstack` and `/_ministack` endpoints, requests to a deployed REST API) are always
//! forwarded. Each answer closes its connection (`Connection: close`), so clients never reuse a
//! connection the proxy is done with.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One AWS API call, as the proxy sees it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The signing name of the service (`lambda`, `apigateway`, `kinesis`), from the signature.
    pub service: String,
    /// The operation where the protocol names it (`X-Amz-Target` or `Action=`), else empty.
    pub operation: String,
    pub method: String,
    pub path: String,
}

/// What a faulted call is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 503 ServiceUnavailable (transient).
    Unavailable,
    /// A throttling error in the call's protocol (transient).
    Throttled,
    /// An HTTP 404 with no body at all (moto's answer to API Gateway's GetTags).
    BareNotFound,
    /// An access-denied refusal (permanent: a missing permission).
    Denied,
    /// The call is carried out, but its answer is lost: the client gets a 503 and retries a call
    /// that already took effect.
    LostAnswer,
}

type Chooser = dyn Fn(&Call) -> Option<Fault> + Send + Sync;

struct Shared {
    choose: Mutex<Box<Chooser>>,
    faulted: AtomicUsize,
    forwarded: AtomicUsize,
    stop: AtomicBool,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    pub url: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy in front of `upstream` (`http://127.0.0.1:4566`) that forwards everything until
    /// told otherwise.
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fault proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let shared = Arc::new(Shared {
            choose: Mutex::new(Box::new(|_| None)),
            faulted: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (shared, upstream) = (accepting.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &shared);
                });
            }
        });
        Self { url, shared }
    }

    /// Faults each AWS call with probability `share`, each fault drawn from `faults`.
    pub fn fault_share(&self, share: f64, faults: &'static [Fault]) {
        self.choose(move |_| (fastrand::f64() < share).then(|| faults[fastrand::usize(..faults.len())]));
    }

    /// Decides each call's fault with `choose` (`None`: forwarded).
    pub fn choose(&self, choose: impl Fn(&Call) -> Option<Fault> + Send + Sync + 'static) {
        *self.shared.choose.lock().unwrap() = Box::new(choose);
    }

    /// Forwards everything from now on.
    pub fn heal(&self) {
        self.choose(|_| None);
    }

    /// How many calls were faulted and how many forwarded so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.shared.faulted.load(Ordering::Relaxed), self.shared.forwarded.load(Ordering::Relaxed))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// One request as read from the client: its head (lines without the final blank line), its
/// headers, and its body bytes.
struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Serves one client connection: each request is faulted or forwarded, then the connection closes.
fn serve(client: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_request(&mut reader)? else { return Ok(()) };
    let mut client = client;
    let call = call_of(&request);
    let fault = call.as_ref().and_then(|call| (shared.choose.lock().unwrap())(call));
    match fault {
        Some(Fault::LostAnswer) => {
            shared.faulted.fetch_add(1, Ordering::Relaxed);
            forward(&request, upstream)?;
            client.write_all(&fault_answer(Fault::Unavailable, &request, call.as_ref().unwrap()))?;
        }
        Some(fault) => {
            shared.faulted.fetch_add(1, Ordering::Relaxed);
            client.write_all(&fault_answer(fault, &request, call.as_ref().unwrap()))?;
        }
        None => {
            shared.forwarded.fetch_add(1, Ordering::Relaxed);
            client.write_all(&forward(&request, upstream)?)?;
        }
    }
    client.flush()?;
    client.shutdown(std::net::Shutdown::Both)
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let mut request = Request { request_line: request_line.trim_end().to_string(), headers, body: Vec::new() };
    if let Some(length) = request.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
    } else if request.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        request.body = read_chunked(reader)?;
        request.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"));
        request.headers.push(("Content-Length".into(), request.body.len().to_string()));
    }
    Ok(Some(request))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// The AWS API call a request is, or `None` for anything else (always forwarded).
fn call_of(request: &Request) -> Option<Call> {
    let mut parts = request.request_line.split(' ');
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    if path.starts_with("/_") || path.contains("/_user_request_") {
        return None;
    }
    let service = request.header("authorization")?.split("Credential=").nth(1)?.split('/').nth(3)?.to_string();
    let operation = match request.header("x-amz-target") {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
        None => String::from_utf8_lossy(&request.body)
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or_default()
            .to_string(),
    };
    Some(Call { service, operation, method, path })
}

/// The answer to a faulted call, in the shape its protocol uses for errors.
fn fault_answer(fault: Fault, request: &Request, call: &Call) -> Vec<u8> {
    let (status, code, message) = match fault {
        Fault::Unavailable => (503, "ServiceUnavailable", "injected"),
        Fault::Throttled => (400, "ThrottlingException", "Rate exceeded (injected)"),
        Fault::BareNotFound => return answer(404, &[], b""),
        Fault::Denied => (403, "AccessDeniedException", "injected: not allowed"),
        Fault::LostAnswer => (503, "ServiceUnavailable", "injected: the call was carried out"),
    };
    let json = request.header("x-amz-target").is_some();
    let query = request.header("content-type").is_some_and(|c| c.contains("x-www-form-urlencoded"));
    if json {
        let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
        return answer(
            status,
            &[("x-amzn-ErrorType", code), ("Content-Type", "application/x-amz-json-1.1")],
            body.as_bytes(),
        );
    }
    if query {
        let code = match fault {
            Fault::Throttled => "Throttling",
            Fault::Denied => "AccessDenied",
            _ => code,
        };
        let body = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>injected</RequestId></ErrorResponse>"
        );
        return answer(status, &[("Content-Type", "text/xml")], body.as_bytes());
    }
    if call.service == "s3" {
        let (status, code) = match fault {
            Fault::Throttled => (503, "SlowDown"),
            Fault::Denied => (403, "AccessDenied"),
            _ => (status, code),
        };
        let body = format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>");
        return answer(status, &[("Content-Type", "application/xml")], body.as_bytes());
    }
    // REST-JSON (Lambda, API Gateway): the code in a header, throttling as HTTP 429.
    let (status, code) = match fault {
        Fault::Throttled => (429, "TooManyRequestsException"),
        _ => (status, code),
    };
    let body = format!(r#"{{"message":"{message}"}}"#);
    answer(status, &[("x-amzn-ErrorType", code), ("Content-Type", "application/json")], body.as_bytes())
}

fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} Injected\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends the request upstream on a connection of its own and returns the whole answer, with
/// `Connection: close` in its head.
fn forward(request: &Request, upstream: &str) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut head = format!("{}\r\n", request.request_line);
    for (name, value) in request.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("connection")) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    server.write_all(head.as_bytes())?;
    server.write_all(&request.body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let (head, body) = response.split_at(split);
    let head = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> = head.split("\r\n").filter(|l| !l.is_empty()).collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let mut out = lines.join("\r\n");
    out.push_str("\r\nConnection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Ok(out)
}
