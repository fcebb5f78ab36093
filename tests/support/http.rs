//! An HTTP client for the node's endpoints.

use super::*;

/// A GET, enough for health and metrics endpoints: the status and the body as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, &[], None).await
}

/// A request with extra headers and an optional JSON body: the status and the body as text.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> (u16, String) {
    let answer = http_answer(addr, method, path, headers, json).await;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    (answer.status, body)
}

/// An HTTP answer as it came: status, headers (names in lower case) and the body's bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a connection of its own (hyper's client), the path sent as given
/// (unnormalised, so tests can try `..` however it is spelt); the whole answer.
pub async fn http_answer(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> Answer {
    use http_body_util::{BodyExt, Full};
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connects");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("an HTTP/1.1 connection");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = Full::new(bytes::Bytes::from(json.unwrap_or("").to_owned()));
        let response = sender
            .send_request(request.body(body).expect("a request"))
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("answers in time")
}
