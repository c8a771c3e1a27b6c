//! Link layers: Ethernet with 802.1Q/802.1ad tags, Linux SLL and SLL2, BSD null/loopback, raw IP.
//!
//! Each decoder finds the EtherType of the network-layer payload and where it starts. The link
//! type always comes from the capture, never from guessing at the bytes.

use super::Skip;
use crate::capture::LinkType;

/// EtherType of IPv4 (IEEE 802 numbers registry).
pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer VLAN tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service VLAN tag (QinQ outer tag).
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ outer tag still emitted by some switches.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// Values below this in the EtherType position are 802.3 lengths, not types (IEEE 802.3 clause 3.2.6).
const ETHERTYPE_MIN: u16 = 0x0600;
/// How many stacked VLAN tags are followed before the frame is called malformed.
pub const VLAN_TAGS_MAX: usize = 4;

/// The link layer's view of a frame. The MAC addresses are left where they lie in the frame
/// until the packet is built (a reference is cheaper to carry than the bytes).
pub(super) struct Link<'a> {
    pub src_mac: Option<&'a [u8; 6]>,
    pub dst_mac: Option<&'a [u8; 6]>,
    pub vlan: Option<u16>,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> Link<'a> {
    pub(super) fn ip(ethertype: u16, payload: &'a [u8]) -> Link<'a> {
        Link {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            ethertype,
            payload,
        }
    }
}

/// The `N` bytes of `b` from `at`, if it holds them.
pub(super) fn chunk<const N: usize>(b: &[u8], at: usize) -> Option<&[u8; N]> {
    b.get(at..)?.first_chunk()
}

fn be16(b: &[u8], at: usize) -> Result<u16, Skip> {
    chunk(b, at)
        .map(|&x| u16::from_be_bytes(x))
        .ok_or(Skip::Truncated)
}

/// Finds the network layer of a frame of the given link type.
#[inline]
pub(super) fn decode(link_type: LinkType, data: &[u8]) -> Result<Link<'_>, Skip> {
    match link_type {
        LinkType::ETHERNET => ethernet(data),
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => raw(data),
        LinkType::IPV4 => Ok(Link::ip(ETHERTYPE_IPV4, data)),
        LinkType::IPV6 => Ok(Link::ip(ETHERTYPE_IPV6, data)),
        LinkType::LINUX_SLL => sll(data),
        LinkType::LINUX_SLL2 => sll2(data),
        LinkType::NULL => null(data, false),
        LinkType::LOOP => null(data, true),
        LinkType(other) => Err(Skip::UnsupportedLinkType(other)),
    }
}

/// Raw IP: the version nibble says which.
fn raw(data: &[u8]) -> Result<Link<'_>, Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok(Link::ip(ETHERTYPE_IPV4, data)),
        Some(6) => Ok(Link::ip(ETHERTYPE_IPV6, data)),
        Some(_) => Err(Skip::Malformed),
        None => Err(Skip::Truncated),
    }
}

/// Ethernet II: destination, source, EtherType, then any stack of VLAN tags.
#[inline]
pub(super) fn ethernet(data: &[u8]) -> Result<Link<'_>, Skip> {
    // One length check for the untagged header; the reads below cannot fail after it.
    let Some(head) = data.first_chunk::<14>() else {
        return Err(Skip::Truncated);
    };
    let (dst, src) = (chunk(head, 0), chunk(head, 6));
    let (vlan, ethertype, at) = vlan_stack(data, 12)?;
    Ok(Link {
        src_mac: src,
        dst_mac: dst,
        vlan,
        ethertype,
        payload: data.get(at..).ok_or(Skip::Truncated)?,
    })
}

/// Reads the EtherType at `at` and follows 802.1Q/802.1ad tags; returns the outermost VLAN id,
/// the inner EtherType and the offset of the payload.
#[inline]
fn vlan_stack(data: &[u8], mut at: usize) -> Result<(Option<u16>, u16, usize), Skip> {
    let mut vlan = None;
    for _ in 0..=VLAN_TAGS_MAX {
        let ethertype = be16(data, at)?;
        match ethertype {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // Tag control information: PCP (3 bits), DEI (1), VLAN id (12).
                let tci = be16(data, at + 2)?;
                vlan.get_or_insert(tci & 0x0fff);
                at += 4;
            }
            t if t < ETHERTYPE_MIN => return Err(Skip::NotIp),
            t => return Ok((vlan, t, at + 2)),
        }
    }
    Err(Skip::Malformed)
}

/// ARPHRD_ETHER: the SLL address field holds a 6-byte MAC.
const ARPHRD_ETHER: u16 = 1;

/// Linux cooked capture v1: packet type (2), ARPHRD type (2), address length (2), address (8),
/// protocol (2). <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>
fn sll(data: &[u8]) -> Result<Link<'_>, Skip> {
    let hatype = be16(data, 2)?;
    let addr_len = be16(data, 4)?;
    let (vlan, ethertype, at) = vlan_stack(data, 14)?;
    let src_mac = (hatype == ARPHRD_ETHER && addr_len == 6)
        .then(|| chunk(data, 6))
        .flatten();
    Ok(Link {
        src_mac,
        dst_mac: None,
        vlan,
        ethertype,
        payload: data.get(at..).ok_or(Skip::Truncated)?,
    })
}

/// Linux cooked capture v2: protocol (2), reserved (2), interface index (4), ARPHRD type (2),
/// packet type (1), address length (1), address (8). <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html>
fn sll2(data: &[u8]) -> Result<Link<'_>, Skip> {
    if data.len() < 20 {
        return Err(Skip::Truncated);
    }
    let hatype = be16(data, 8)?;
    let addr_len = data.get(11).copied().ok_or(Skip::Truncated)?;
    let (vlan, ethertype, at) = match be16(data, 0)? {
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
            // The tag itself sits at the start of the payload, after the 20-byte header.
            let tci = be16(data, 20)?;
            let (_, t, at) = vlan_stack(data, 22)?;
            (Some(tci & 0x0fff), t, at)
        }
        t if t < ETHERTYPE_MIN => return Err(Skip::NotIp),
        t => (None, t, 20),
    };
    let src_mac = (hatype == ARPHRD_ETHER && addr_len == 6)
        .then(|| chunk(data, 12))
        .flatten();
    Ok(Link {
        src_mac,
        dst_mac: None,
        vlan,
        ethertype,
        payload: data.get(at..).ok_or(Skip::Truncated)?,
    })
}

/// BSD null/loopback: a 4-byte protocol family, in the capturing host's byte order for NULL (so
/// either order here) and network order for LOOP. AF_INET is 2 everywhere; AF_INET6 is 24
/// (NetBSD, OpenBSD), 28 (FreeBSD, DragonFly) or 30 (macOS).
/// <https://www.tcpdump.org/linktypes/LINKTYPE_NULL.html>
fn null(data: &[u8], network_order: bool) -> Result<Link<'_>, Skip> {
    let head: [u8; 4] = data
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or(Skip::Truncated)?;
    let be = u32::from_be_bytes(head);
    let family = if network_order || be < 256 {
        be
    } else {
        u32::from_le_bytes(head)
    };
    let payload = data.get(4..).ok_or(Skip::Truncated)?;
    match family {
        2 => Ok(Link::ip(ETHERTYPE_IPV4, payload)),
        24 | 28 | 30 => Ok(Link::ip(ETHERTYPE_IPV6, payload)),
        _ => Err(Skip::NotIp),
    }
}
