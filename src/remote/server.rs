//! A small HTTP/1.1 server on std's sockets with `httparse` for the request
//! head: one thread per connection, at most `max_connections` of them, every
//! read under a deadline (a slow or half-open client is dropped, never waited
//! for), the head and the body size-capped before anything is allocated for
//! them. One request per connection (`Connection: close`): a phone on a LAN
//! does not need keep-alive, and it keeps a connection's life short.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How much a connection may cost.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// Request line and headers.
    pub head_bytes: usize,
    /// The whole head must arrive within this.
    pub head_timeout: Duration,
    /// The whole body must arrive within this.
    pub body_timeout: Duration,
    /// Any single read or write.
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 16,
            head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(120),
            io_timeout: Duration::from_secs(10),
        }
    }
}

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: IpAddr,
}

impl Request {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.into())],
            body: body.into(),
        }
    }

    /// A short plain-text answer (errors, rejections).
    pub fn text(status: u16, msg: impl Into<String>) -> Response {
        let mut m = msg.into();
        m.push('\n');
        Response::new(status, "text/plain; charset=utf-8", m)
    }

    pub fn json<T: serde::Serialize>(status: u16, v: &T) -> Response {
        match serde_json::to_vec(v) {
            Ok(b) => Response::new(status, "application/json", b),
            Err(e) => Response::text(500, format!("cannot encode the answer: {e}")),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            // Values are ours, but a header must never smuggle a line break.
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\
             X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\
             X-Frame-Options: DENY\r\n\r\n",
            self.body.len()
        ));
        w.write_all(head.as_bytes())?;
        w.write_all(&self.body)?;
        w.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// What the server serves.
pub trait Handler: Send + Sync + 'static {
    /// The largest body accepted for this method and path (checked against
    /// Content-Length before the body is read).
    fn body_limit(&self, method: &str, path: &str) -> usize;
    fn handle(&self, req: Request) -> Response;
}

/// A running server; dropping it stops accepting (connections in flight finish).
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        limits: Limits,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("remote-accept".into())
            .spawn(move || accept_loop(listener, handler, limits, s2))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
                SocketAddr::V6(_) => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Decrements the connection count when a connection thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: don't spin on it.
                log::warn!("remote: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let peer = match stream.peer_addr() {
            Ok(a) => a.ip(),
            Err(_) => continue,
        };
        if active.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            log::warn!("remote: {peer}: too many connections; answered 503");
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = Response::text(503, "busy: too many connections").write_to(&mut stream);
            continue;
        }
        let slot = Slot(active.clone());
        let (h, l) = (handler.clone(), limits.clone());
        let spawned = std::thread::Builder::new()
            .name("remote-conn".into())
            .stack_size(512 * 1024)
            .spawn(move || {
                let _slot = slot;
                serve(stream, peer, &*h, &l);
            });
        if let Err(e) = spawned {
            log::warn!("remote: cannot start a connection thread: {e}");
        }
    }
}

fn serve(mut stream: TcpStream, peer: IpAddr, handler: &dyn Handler, limits: &Limits) {
    let _ = stream.set_write_timeout(Some(limits.io_timeout));
    // A refused request may leave unread bytes behind; an answered one does not.
    let (response, unread) = match read_request(&mut stream, peer, handler, limits) {
        Ok(req) => (handler.handle(req), false),
        Err(Rejected::Gone) => return,
        Err(Rejected::Status(code, why)) => {
            log::info!("remote: {peer}: rejected ({code}): {why}");
            (Response::text(code, why), true)
        }
    };
    if response.status >= 400 {
        log::debug!("remote: {peer}: {}", response.status);
    }
    let _ = response.write_to(&mut stream);
    let _ = stream.shutdown(Shutdown::Write);
    if unread {
        drain(&mut stream);
    }
}

/// Reads briefly what the client still sends (an oversized body we refused)
/// so that closing does not reset the connection before it reads our answer.
fn drain(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let end = Instant::now() + Duration::from_millis(500);
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while Instant::now() < end && total < 256 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

#[derive(Debug)]
enum Rejected {
    /// The client went away before sending a request: nothing to answer.
    Gone,
    Status(u16, String),
}

fn reject(code: u16, why: impl Into<String>) -> Rejected {
    Rejected::Status(code, why.into())
}

/// One read before `deadline`; a time-out is the client's fault (408).
fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    limits: &Limits,
) -> Result<usize, Rejected> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(reject(408, "the request took too long to arrive"));
    }
    let _ = stream.set_read_timeout(Some(left.min(limits.io_timeout)));
    loop {
        return match stream.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(reject(408, "the request took too long to arrive"))
            }
            Err(_) => Err(Rejected::Gone),
        };
    }
}

fn read_request(
    stream: &mut TcpStream,
    peer: IpAddr,
    handler: &dyn Handler,
    limits: &Limits,
) -> Result<Request, Rejected> {
    let deadline = Instant::now() + limits.head_timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let (head_len, mut req) = loop {
        let n = read_some(stream, &mut chunk, deadline, limits)?;
        if n == 0 {
            return if buf.is_empty() {
                Err(Rejected::Gone)
            } else {
                Err(reject(400, "the connection closed mid-request"))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(parsed) = parse_head(&buf, peer)? {
            break parsed;
        }
        if buf.len() > limits.head_bytes {
            return Err(reject(431, "the request head is too large"));
        }
    };
    if head_len > limits.head_bytes {
        return Err(reject(431, "the request head is too large"));
    }
    if req.header("transfer-encoding").is_some() {
        return Err(reject(411, "send the body with a Content-Length"));
    }
    // Two lengths are how requests get smuggled past proxies: refuse them.
    let lengths = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if lengths.count() > 1 {
        return Err(reject(400, "more than one Content-Length"));
    }
    let len: usize = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| reject(400, "Content-Length is not a number"))?,
    };
    let limit = handler.body_limit(&req.method, &req.path);
    if len > limit {
        return Err(reject(
            413,
            format!("the body is too large ({len} bytes; at most {limit})"),
        ));
    }
    let mut body = buf.split_off(head_len);
    body.truncate(len);
    let deadline = Instant::now() + limits.body_timeout;
    body.reserve_exact(len - body.len());
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        let n = read_some(stream, &mut chunk[..want], deadline, limits)?;
        if n == 0 {
            return Err(reject(400, "the connection closed mid-body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    req.body = body;
    Ok(req)
}

/// The request head once it is complete (with its length), None while partial.
fn parse_head(buf: &[u8], peer: IpAddr) -> Result<Option<(usize, Request)>, Rejected> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(reject(431, "too many headers")),
        Err(e) => return Err(reject(400, format!("malformed request: {e}"))),
    };
    let target = r.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(Some((
        n,
        Request {
            method: r.method.unwrap_or("").to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            body: Vec::new(),
            peer,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_head_parses_and_a_partial_one_waits() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        assert!(parse_head(b"GET /x?a=1 HTTP/1.1\r\nHost: h\r\n", ip)
            .unwrap()
            .is_none());
        let (n, r) = parse_head(b"GET /x?a=b%20c HTTP/1.1\r\nHost: h\r\n\r\nBODY", ip)
            .unwrap()
            .unwrap();
        assert_eq!((n, r.method.as_str(), r.path.as_str()), (36, "GET", "/x"));
        assert_eq!(r.param("a").as_deref(), Some("b c"));
        assert_eq!(r.header("HOST"), Some("h"));
        assert!(matches!(
            parse_head(b"GET\0 / HTTP/1.1\r\n\r\n", ip),
            Err(Rejected::Status(400, _))
        ));
    }

    #[test]
    fn response_headers_cannot_carry_a_line_break() {
        let mut out = vec![];
        Response::text(200, "ok")
            .with("Location", "/a\r\nSet-Cookie: x=1")
            .write_to(&mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Location: /aSet-Cookie: x=1\r\n"), "{text}");
    }
}
