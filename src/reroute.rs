//! Re-routing: what a flow went through before reaching the destination it is judged on.
//!
//! One type, [`Via`], covers the three forms: a tunnel that carried the flow (its far
//! endpoint), a proxy the device asked to connect it onwards (HTTP CONNECT or absolute-form,
//! SOCKS4/4a/5), and a server that redirected the device elsewhere (HTTP 3xx). In every case
//! the event's `remote` describes the destination judged by the policy and `via` the hop in
//! between, so a tunnelled, a proxied and a redirected flow read the same way.

use std::net::IpAddr;
use std::sync::Arc;

use crate::decode::TunnelKind;
use crate::event::{RedirectRef, ViaRef};
use crate::geoip::GeoInfo;
use crate::names::proxy::ProxyKind;

/// `via.kind` of a redirect.
pub const VIA_REDIRECT: &str = "redirect";

/// Every `via.kind` name, for validating `via_kinds`.
pub fn via_kind_names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = TunnelKind::ALL.iter().map(|k| k.as_str()).collect();
    all.extend([
        ProxyKind::Http.as_str(),
        ProxyKind::Socks4.as_str(),
        ProxyKind::Socks5.as_str(),
        VIA_REDIRECT,
    ]);
    all
}

/// What kind of hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaKind {
    /// The outermost tunnel, with the levels of encapsulation opened.
    Tunnel {
        kind: TunnelKind,
        depth: u8,
    },
    Proxy(ProxyKind),
    Redirect,
}

impl ViaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViaKind::Tunnel { kind, .. } => kind.as_str(),
            ViaKind::Proxy(p) => p.as_str(),
            ViaKind::Redirect => VIA_REDIRECT,
        }
    }
}

/// The hop a flow went through: the tunnel's far endpoint, the proxy, or the redirecting
/// server, with what the databases say about it.
#[derive(Clone, Debug)]
pub struct Via {
    pub kind: ViaKind,
    pub ip: IpAddr,
    /// The proxy's or redirecting server's port (tunnels have none).
    pub port: Option<u16>,
    pub geo: GeoInfo,
}

impl Via {
    /// The `via` object of events.
    pub fn to_ref(&self) -> ViaRef {
        ViaRef {
            kind: self.kind.as_str(),
            ip: self.ip,
            country: self.geo.country,
            asn: self.geo.asn,
            depth: match self.kind {
                ViaKind::Tunnel { depth, .. } => Some(depth),
                _ => None,
            },
            port: self.port,
        }
    }
}

/// The destination a proxied flow is judged on: what the client named to the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The address: the literal the client gave, else the newest address a DNS answer in the
    /// capture gave this device for the name; `None` when neither is known.
    pub addr: Option<IpAddr>,
    pub port: u16,
    /// The name the client gave, if any.
    pub host: Option<Arc<str>>,
}

/// A redirect answered on a flow, with its target resolved as far as the capture tells.
#[derive(Clone, Debug)]
pub struct RedirectHop {
    pub status: u16,
    pub location: String,
    pub host: Option<Arc<str>>,
    pub port: Option<u16>,
    pub addr: Option<IpAddr>,
    pub geo: GeoInfo,
}

impl RedirectHop {
    /// The `redirect` object of flow records.
    pub fn to_ref(&self) -> RedirectRef {
        RedirectRef {
            status: self.status,
            location: self.location.clone(),
            host: self.host.as_deref().map(str::to_owned),
            port: self.port,
            ip: self.addr,
            country: self.geo.country,
            asn: self.geo.asn,
        }
    }
}
