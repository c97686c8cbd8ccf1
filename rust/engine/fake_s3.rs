//! A deliberately misbehaving S3 server for engine tests: one object, served over HTTP/1.1
//! on 127.0.0.1 with Range and If-Match, plus switches for the edge behaviours real servers
//! differ on (Range ignored, 416 for empty objects) and for faults (bodies cut short, the
//! object replaced after the first request, slow responses).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Behaviour {
    /// Answer ranged GETs with 200 and the whole object.
    pub ignore_range: bool,
    /// Cut this many GET bodies short (half the promised bytes, then close).
    pub truncate_bodies: usize,
    /// After the first GET, replace the object with this content (new ETag).
    pub replace_after_first: Option<Vec<u8>>,
    /// Wait this long before each response...
    pub delay: Duration,
    /// ...from this request on (counting from 0; GETs and HEADs counted separately).
    pub delay_from: usize,
}

pub struct FakeS3 {
    pub endpoint: String,
    pub gets: Arc<AtomicUsize>,
    pub heads: Arc<AtomicUsize>,
}

struct State {
    data: Vec<u8>,
    version: u32,
    behaviour: Behaviour,
}

impl State {
    fn etag(&self) -> String {
        format!("\"v{}-{}\"", self.version, self.data.len())
    }
}

/// Serve `data` as any key of any bucket; a key containing "missing" answers 404.
pub async fn start(data: Vec<u8>, behaviour: Behaviour) -> FakeS3 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(State { data, version: 1, behaviour }));
    let (gets, heads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (g, h) = (gets.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            tokio::spawn(serve(sock, state.clone(), g.clone(), h.clone()));
        }
    });
    FakeS3 { endpoint, gets, heads }
}

async fn serve(sock: tokio::net::TcpStream, state: Arc<Mutex<State>>, gets: Arc<AtomicUsize>, heads: Arc<AtomicUsize>) {
    let mut conn = BufReader::new(sock);
    loop {
        let mut request_line = String::new();
        if conn.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let (mut range, mut if_match) = (None, None);
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "range" => range = Some(value.trim().to_string()),
                    "if-match" => if_match = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let is_head = request_line.starts_with("HEAD");
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        let (status, headers, body, cut, n) = {
            let mut st = state.lock().unwrap();
            let n = if is_head { heads.fetch_add(1, Ordering::SeqCst) } else { gets.fetch_add(1, Ordering::SeqCst) };
            let answer = respond(&st, is_head, &path, range.as_deref(), if_match.as_deref());
            if !is_head && n == 0 {
                if let Some(new) = st.behaviour.replace_after_first.take() {
                    st.data = new;
                    st.version += 1;
                }
            }
            let cut = !is_head && !answer.2.is_empty() && st.behaviour.truncate_bodies > 0;
            if cut {
                st.behaviour.truncate_bodies -= 1;
            }
            (answer.0, answer.1, answer.2, cut, n)
        };
        let delay = {
            let behaviour = &state.lock().unwrap().behaviour;
            if n >= behaviour.delay_from { behaviour.delay } else { Duration::ZERO }
        };
        tokio::time::sleep(delay).await;
        // HEAD announces the object's length without sending it.
        let length = headers
            .iter()
            .find(|(k, _)| *k == "X-Object-Length")
            .map_or(body.len().to_string(), |(_, v)| v.clone());
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\n");
        for (k, v) in headers.iter().filter(|(k, _)| *k != "X-Object-Length") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let sock = conn.get_mut();
        if sock.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if is_head {
            continue;
        }
        let send = if cut { &body[..body.len() / 2] } else { &body[..] };
        if sock.write_all(send).await.is_err() || cut {
            return; // dropping the socket closes the connection mid-body
        }
    }
}

type Answer = (&'static str, Vec<(&'static str, String)>, Vec<u8>);

fn error(status: &'static str, code: &str) -> Answer {
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code} from fake S3</Message></Error>");
    (status, vec![("Content-Type", "application/xml".into())], xml.into_bytes())
}

fn respond(st: &State, is_head: bool, path: &str, range: Option<&str>, if_match: Option<&str>) -> Answer {
    if path.contains("missing") {
        return if is_head { ("404 Not Found", vec![], vec![]) } else { error("404 Not Found", "NoSuchKey") };
    }
    let etag = st.etag();
    if if_match.is_some_and(|m| m != etag) {
        return error("412 Precondition Failed", "PreconditionFailed");
    }
    let total = st.data.len() as u64;
    let mut headers = vec![("ETag", etag), ("Last-Modified", "Wed, 01 Jan 2025 00:00:00 GMT".into())];
    if is_head {
        headers.push(("X-Object-Length", total.to_string()));
        return ("200 OK", headers, vec![]);
    }
    let Some(range) = range.filter(|_| !st.behaviour.ignore_range) else {
        return ("200 OK", headers, st.data.clone());
    };
    let spec = range.trim_start_matches("bytes=");
    let (a, b) = spec.split_once('-').unwrap();
    let start: u64 = a.parse().unwrap();
    if start >= total {
        return error("416 Requested Range Not Satisfiable", "InvalidRange");
    }
    let end = b.parse::<u64>().unwrap().min(total - 1);
    headers.push(("Content-Range", format!("bytes {start}-{end}/{total}")));
    ("206 Partial Content", headers, st.data[start as usize..=end as usize].to_vec())
}
