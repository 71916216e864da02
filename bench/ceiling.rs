//! The ceiling of the HTTP layer: tiny_http (profiteer's patched copy) with
//! the same number of threads calling `recv()`, answering every request with
//! a fixed JSON-RPC body. No handler on this layer can be faster.
//!
//! `cargo run --release --example ceiling -- PORT THREADS`

use std::sync::Arc;

const BODY: &[u8] = br#"{"jsonrpc":"2.0","result":"pong","id":1}"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(18999);
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(20);
    let server = match tiny_http::Server::http(("127.0.0.1", port)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("ceiling: cannot listen on {port}: {e}");
            std::process::exit(2);
        }
    };
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (server, header) = (server.clone(), header.clone());
            std::thread::spawn(move || {
                while let Ok(mut rq) = server.recv() {
                    let mut body = Vec::new();
                    let _ = rq.as_reader().read_to_end(&mut body);
                    let mut response = tiny_http::Response::from_data(BODY);
                    if let Ok(h) = header.clone() {
                        response.add_header(h);
                    }
                    let _ = rq.respond(response);
                }
            })
        })
        .collect();
    eprintln!("ceiling listening on 127.0.0.1:{port} with {threads} threads");
    for h in handles {
        let _ = h.join();
    }
}
