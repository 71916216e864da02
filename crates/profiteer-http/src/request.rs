use std::io::Error as IoError;
use std::io::{self, Cursor, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use crate::{HTTPVersion, Header, Method, Response};

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// profiteer patch: a request arrives complete. Its body was read by the
/// connection's poller thread (see `conn.rs`); answering it writes the
/// response into a buffer that the poller thread sends. Nothing done
/// with a `Request` ever waits on the client. Pipelined requests on one
/// connection are served one after the other, and `upgrade` is gone.
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // the whole body, read before the request was handed on
    data_reader: Cursor<Vec<u8>>,

    // if this writer is empty, then the request has been answered
    response_writer: Option<Box<dyn Write + Send + 'static>>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,

    // when the request line and headers were complete
    arrived: Instant,

    // the connection closes after this request's answer (sent as
    // `Connection: close`)
    pub(crate) close_after: bool,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn new_request(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    body: Vec<u8>,
    body_length: Option<usize>,
    arrived: Instant,
) -> Request {
    Request {
        data_reader: Cursor::new(body),
        response_writer: None,
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length,
        arrived,
        close_after: false,
    }
}

impl Request {
    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use std::io::Read;
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    /// let mut content = String::new();
    /// request.as_reader().read_to_string(&mut content).unwrap();
    /// ```
    ///
    /// profiteer patch: the body is in memory already (`100 Continue`, when
    /// asked for, was sent before it was read).
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        &mut self.data_reader
    }

    /// profiteer patch: the body (what `as_reader` has not read of it),
    /// moved out of the request rather than copied; the request's reader
    /// is empty after.
    pub fn take_body(&mut self) -> Vec<u8> {
        use std::convert::TryFrom;
        let read = usize::try_from(self.data_reader.position()).unwrap_or(usize::MAX);
        let mut body = std::mem::take(self.data_reader.get_mut());
        self.data_reader.set_position(0);
        body.drain(..read.min(body.len()));
        body
    }

    /// profiteer patch: when the request line and headers were complete
    /// (the body, if any, arrived after this).
    #[inline]
    pub fn arrived(&self) -> Instant {
        self.arrived
    }

    pub(crate) fn set_body(&mut self, body: Vec<u8>) {
        if self.body_length.is_none() {
            self.body_length = Some(body.len());
        }
        self.data_reader = Cursor::new(body);
    }

    pub(crate) fn set_sink(&mut self, sink: Box<dyn Write + Send + 'static>) {
        self.response_writer = Some(sink);
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// profiteer patch: what is written is collected and sent when the
    /// writer is dropped; the connection waits for it before its next request.
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        self.extract_writer_impl()
    }

    /// Extract the response `Writer` object from the Request, dropping this `Writer` has the same side effects
    /// as the object returned by `into_writer` above.
    ///
    /// This may only be called once on a single request.
    fn extract_writer_impl(&mut self) -> Box<dyn Write + Send + 'static> {
        use std::mem;

        assert!(self.response_writer.is_some());

        let mut writer = None;
        mem::swap(&mut self.response_writer, &mut writer);
        writer.unwrap()
    }

    /// Sends a response to this request.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        self.respond_impl(response)
    }

    fn respond_impl<R>(&mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let mut writer = self.extract_writer_impl();

        let do_not_send_body = self.method == Method::Head;

        Self::ignore_client_closing_errors(response.raw_print_closing(
            writer.by_ref(),
            self.http_version.clone(),
            &self.headers,
            do_not_send_body,
            self.close_after,
        ))?;

        Self::ignore_client_closing_errors(writer.flush())
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.response_writer.is_some() {
            let response = Response::empty(500);
            let _ = self.respond_impl(response); // ignoring any potential error
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn a_taken_body_is_what_was_not_read_and_leaves_the_reader_empty() {
        use std::io::Read;
        let mut whole: Request = crate::test::TestRequest::new().with_body("hello").into();
        assert_eq!(whole.take_body(), b"hello");
        assert_eq!(whole.take_body(), b"");
        let mut rest: Request = crate::test::TestRequest::new().with_body("hello").into();
        let mut two = [0u8; 2];
        rest.as_reader().read_exact(&mut two).unwrap();
        assert_eq!(rest.take_body(), b"llo");
        let mut after = Vec::new();
        rest.as_reader().read_to_end(&mut after).unwrap();
        assert!(after.is_empty());
    }

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
