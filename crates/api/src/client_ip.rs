//! The client's address: the socket peer, or what a trusted reverse proxy says it forwarded
//! (`X-Forwarded-For`, then `X-Real-IP`). Forwarding headers from anyone else are ignored.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// An address or a CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A malformed [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an IP address or a CIDR block such as 10.0.0.0/8, got {0:?}")]
pub struct IpNetError(String);

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpNetError(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    /// `127.0.0.1` and `::1`: the default trusted proxies.
    pub fn loopback() -> Vec<IpNet> {
        vec![
            IpNet {
                addr: IpAddr::from([127, 0, 0, 1]),
                prefix: 32,
            },
            IpNet {
                addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                prefix: 128,
            },
        ]
    }

    /// Whether `ip` is inside this block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// The client address of a request, put into the request extensions by [`client_ip_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// The address [`client_ip_layer`] resolved (none outside the layer): handlers take it as an
/// extractor, so every use of the client address goes through the trusted-proxy rule.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(None)))
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(ip))
}

/// The client address. Behind trusted proxies the `X-Forwarded-For` chain is read from the
/// right, skipping trusted hops, so a client cannot forge its address by prepending entries.
pub fn resolve(headers: &HeaderMap, peer: Option<IpAddr>, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = peer.map(|p| p.to_canonical());
    let Some(peer_ip) = peer.filter(|p| trusted(*p, proxies)) else {
        return peer;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(chain) = header("x-forwarded-for") {
        let hops: Vec<IpAddr> = chain
            .split(',')
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        if let Some(client) = hops.iter().rev().find(|ip| !trusted(**ip, proxies)) {
            return Some(*client);
        }
        if let Some(first) = hops.first() {
            return Some(*first);
        }
    }
    if let Some(real) = header("x-real-ip").and_then(|v| v.trim().parse::<IpAddr>().ok()) {
        return Some(real.to_canonical());
    }
    Some(peer_ip)
}

/// Resolves the client address once per request and stores it as [`ClientIp`].
pub async fn client_ip_layer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let ip = resolve(req.headers(), peer, &state.config.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_blocks() {
        assert!("10.0.0.0/8"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("10.9.8.7")));
        assert!(!"10.0.0.0/8"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("11.0.0.1")));
        assert!("192.168.1.0/23"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("192.168.0.9")));
        assert!("::1".parse::<IpNet>().unwrap().contains(ip("::1")));
        assert!("127.0.0.1"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("::ffff:127.0.0.1")));
        assert!("0.0.0.0/0"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("8.8.8.8")));
        for bad in ["", "10.0.0.0/33", "localhost", "1.2.3.4/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let proxies = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        h.insert("x-real-ip", "198.51.100.1".parse().unwrap());
        assert_eq!(
            resolve(&h, Some(ip("127.0.0.1")), &proxies),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            resolve(&h, Some(ip("192.0.2.5")), &proxies),
            Some(ip("192.0.2.5"))
        );
        // A forged left-most entry does not win over the hop the trusted proxy saw.
        h.insert("x-forwarded-for", "1.1.1.1, 203.0.113.9".parse().unwrap());
        assert_eq!(
            resolve(&h, Some(ip("10.0.0.2")), &proxies),
            Some(ip("203.0.113.9"))
        );
        h.remove("x-forwarded-for");
        assert_eq!(
            resolve(&h, Some(ip("10.0.0.2")), &proxies),
            Some(ip("198.51.100.1"))
        );
        h.remove("x-real-ip");
        assert_eq!(
            resolve(&h, Some(ip("10.0.0.2")), &proxies),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(resolve(&h, None, &proxies), None);
    }
}
