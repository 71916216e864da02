//! The ceiling of the HTTP layer: tiny_http (profiteer's patched copy)
//! answering every request with a fixed JSON-RPC body, dispatched the way
//! profiteer dispatches `/rpc` (a handler on the poller threads puts each
//! request on a bounded crossbeam queue read by THREADS workers), so the
//! gap between it and `ping` is what profiteer's own code costs. No handler
//! on this layer, dispatched this way, can be faster.
//!
//! `inline` answers on the poller threads themselves, with no hand-off at
//! all: the most the layer can do, shown beside the ceiling for scale.
//!
//! `cargo run --release --example ceiling -- PORT THREADS [pool|inline]`

use std::sync::Arc;

use crossbeam_channel::bounded;

/// The allocator profiteer uses, so that the gap is profiteer's code, not
/// glibc's malloc against jemalloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BODY: &[u8] = br#"{"jsonrpc":"2.0","result":"pong","id":1}"#;

fn answer(mut rq: tiny_http::Request) {
    let mut body = Vec::new();
    let _ = rq.as_reader().read_to_end(&mut body);
    let mut response = tiny_http::Response::from_data(BODY);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        response.add_header(h);
    }
    let _ = rq.respond(response);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(18999);
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(20);
    let inline = args.get(3).is_some_and(|m| m == "inline");
    let (tx, rx) = bounded::<tiny_http::Request>(64 * threads.max(1));
    let handler: tiny_http::Handler = if inline {
        Arc::new(answer)
    } else {
        Arc::new(move |rq| {
            // A full queue drops the request: tiny_http answers it 500.
            let _ = tx.try_send(rq);
        })
    };
    let config = tiny_http::ServerConfig {
        addr: match tiny_http::ConfigListenAddr::from_socket_addrs(("127.0.0.1", port)) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("ceiling: cannot resolve 127.0.0.1:{port}: {e}");
                std::process::exit(2);
            }
        },
        limits: tiny_http::Limits::default(),
    };
    let server = match tiny_http::Server::with_handler(config, handler) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ceiling: cannot listen on {port}: {e}");
            std::process::exit(2);
        }
    };
    let workers = if inline { 0 } else { threads };
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                for rq in rx {
                    answer(rq);
                }
            })
        })
        .collect();
    drop(rx);
    let mode = if inline { "inline" } else { "pool" };
    eprintln!("ceiling listening on 127.0.0.1:{port} ({mode}, {workers} workers)");
    // Serves until killed; `recv` returns only if the listener is lost.
    let _ = server.recv();
    drop(handles);
}
