//! ctnetlink implementation of [`ConntrackDriver`].
//!
//! A flush never sends a tuple-less delete. It dumps the entries of the mark (the dump
//! request carries `CTA_MARK` *and* `CTA_MARK_MASK`: kernels that do not know the mask, or
//! get a mark without one, ignore the filter), checks every entry's mark again here, and
//! deletes the matching entries one by one by their original tuple and conntrack id. This is
//! what `conntrack -D -m` does too. Why not the kernel's filtered flush (`IPCTNL_MSG_CT_DELETE`
//! with only `CTA_MARK`/`CTA_MARK_MASK`)? When the kernel does not understand the filter it
//! flushes the whole table, which is exactly the failure we exist to avoid; it also reports
//! no count. Deleting by tuple can at worst delete one wrong entry, never the table.
//!
//! The socket belongs to the network namespace of the thread that called
//! [`ConntrackNetlink::connect`], whichever thread uses it later.

use netlink_packet_core::{
    parse_u32_be, DefaultNla, Emitable, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlasIterator, Parseable, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, Tuple};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::collections::BTreeMap;
use tokio::io::unix::AsyncFd;

use super::{check_filter, mark_matches, ConntrackDriver, ConntrackError, Purpose};
use crate::apply::ApplyError;
use routeros_shared::plan::Family;

// Attribute numbers of `enum ctattr_type` (linux/netfilter/nfnetlink_conntrack.h).
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_MARK: u16 = 8;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_MARK_MASK: u16 = 21;
/// `nlmsg_type` of one entry in a dump: `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW`.
const CT_NEW: u16 = 1 << 8;
const ENOENT: i32 = 2;
/// `nfgenmsg.nfgen_family` of IPv4 and IPv6 entries.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `MSG_TRUNC` from <sys/socket.h>: recv returns the real datagram length.
const MSG_TRUNC: i32 = 0x20;
/// Deletes in flight before their acks are read: far below what fills a default receive
/// buffer with acks (which would make the kernel drop them and us report ENOBUFS).
const DELETE_BATCH: usize = 64;
/// Kernel dump datagrams are at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;

/// Talks ctnetlink to the network namespace of the thread that called [`Self::connect`].
#[derive(Debug)]
pub struct ConntrackNetlink {
    socket: AsyncFd<Socket>,
    seq: u32,
    buf: Vec<u8>,
}

/// One conntrack entry from a dump: just enough to delete exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Layer-3 family of the entry (AF_INET, AF_INET6); a delete must carry it.
    family: u8,
    /// Raw value of the nested `CTA_TUPLE_ORIG`, sent back unchanged.
    orig: Vec<u8>,
    /// Raw `CTA_ID`: the kernel deletes only if the entry under the tuple still has this id.
    id: Option<Vec<u8>>,
    /// Raw `CTA_ZONE`, present only for entries outside the default zone.
    zone: Option<Vec<u8>>,
    /// The entry's conntrack mark (0 when the kernel sent none).
    mark: u32,
}

/// One netlink message of a reply datagram, as far as we care.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Entry(Entry),
    /// NLMSG_ERROR: 0 is an ack, otherwise a negative errno.
    Error(i32),
    /// NLMSG_DONE, with the dump's final status (0 or a negative errno).
    Done(i32),
    Other,
}

impl ConntrackNetlink {
    /// Open a ctnetlink socket in the calling thread's network namespace and register it
    /// with the current tokio runtime (which needs its IO driver enabled).
    pub fn connect() -> Result<Self, ApplyError> {
        tokio::runtime::Handle::try_current().map_err(ConntrackError::from)?;
        let open = || -> std::io::Result<Socket> {
            let mut socket = Socket::new(NETLINK_NETFILTER)?;
            socket.bind_auto()?;
            socket.connect(&SocketAddr::new(0, 0))?;
            socket.set_non_blocking(true)?;
            Ok(socket)
        };
        let socket = open().map_err(ConntrackError::io("open ctnetlink socket"))?;
        // SAFETY: `Socket` owns its file descriptor: it stays open until the `Socket` is
        // dropped (which happens only when the `AsyncFd` is), and `as_raw_fd` always
        // returns that same descriptor.
        let socket = unsafe { AsyncFd::register(socket) }
            .map_err(|e| ConntrackError::io("register ctnetlink socket")(e.into()))?;
        Ok(Self {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    async fn send(&self, msg: NetfilterMessage, flags: u16, seq: u32) -> Result<(), ApplyError> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        loop {
            let mut guard = self
                .socket
                .writable()
                .await
                .map_err(ConntrackError::io("wait for ctnetlink socket"))?;
            match guard.try_io(|s| s.get_ref().send(&bytes, 0)) {
                Ok(Ok(n)) if n == bytes.len() => return Ok(()),
                Ok(Ok(n)) => {
                    return Err(ConntrackError::Protocol(format!(
                        "short send on ctnetlink socket: {n} of {} bytes",
                        bytes.len()
                    ))
                    .into())
                }
                Ok(Err(e)) => return Err(ConntrackError::io("send to ctnetlink")(e).into()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receive one datagram and decode the messages whose sequence number `seqs` accepts;
    /// messages of other (earlier, abandoned) requests are dropped.
    async fn recv(&mut self, seqs: impl Fn(u32) -> bool) -> Result<Vec<(u32, Reply)>, ApplyError> {
        let len = loop {
            let mut guard = self
                .socket
                .readable()
                .await
                .map_err(ConntrackError::io("wait for ctnetlink socket"))?;
            self.buf.clear();
            match guard.try_io(|s| s.get_ref().recv(&mut self.buf, MSG_TRUNC)) {
                Ok(Ok(len)) => break len,
                Ok(Err(e)) => return Err(ConntrackError::io("receive from ctnetlink")(e).into()),
                Err(_would_block) => continue,
            }
        };
        if len > self.buf.len() {
            return Err(ConntrackError::Protocol(format!(
                "ctnetlink datagram of {len} bytes truncated to {}",
                self.buf.len()
            ))
            .into());
        }
        let replies = parse_replies(&self.buf)?;
        Ok(replies.into_iter().filter(|(seq, _)| seqs(*seq)).collect())
    }

    /// The entries of `(mark, mask)`, both families. The kernel filters; we check again.
    async fn dump(&mut self, mark: u32, mask: u32) -> Result<Vec<Entry>, ApplyError> {
        let mut entries = Vec::new();
        self.dump_each(Some((mark, mask)), |e| {
            if mark_matches(e.mark, mark, mask) {
                entries.push(e);
            }
        })
        .await?;
        Ok(entries)
    }

    /// How many entries there are of each `ctmark & mask`, from one dump of the whole
    /// table (both families): the status' per-WAN connection counts.
    pub async fn count_by_mark(&mut self, mask: u32) -> Result<BTreeMap<u32, u64>, ApplyError> {
        let mut counts = BTreeMap::new();
        self.dump_each(None, |e| *counts.entry(e.mark & mask).or_insert(0) += 1)
            .await?;
        Ok(counts)
    }

    /// Dump the table (only `(mark, mask)` when given; always with the mask, see the
    /// module documentation) and hand each entry to `each`.
    async fn dump_each(
        &mut self,
        filter: Option<(u32, u32)>,
        mut each: impl FnMut(Entry),
    ) -> Result<(), ApplyError> {
        let seq = self.next_seq();
        let attributes = match filter {
            Some((mark, mask)) => vec![
                ConntrackAttribute::CtaMark(mark),
                ConntrackAttribute::Other(DefaultNla::new(
                    CTA_MARK_MASK,
                    mask.to_be_bytes().to_vec(),
                )),
            ],
            None => Vec::new(),
        };
        let msg = NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
            ConntrackMessage::Get(attributes),
        );
        self.send(msg, NLM_F_REQUEST | NLM_F_DUMP, seq).await?;
        loop {
            for (_, reply) in self.recv(|s| s == seq).await? {
                match reply {
                    Reply::Entry(e) => each(e),
                    Reply::Other => {}
                    Reply::Done(0) => return Ok(()),
                    Reply::Done(code) | Reply::Error(code) => {
                        let (mark, mask) = filter.unwrap_or_default();
                        return Err(ConntrackError::errno(
                            format!("dump mark {mark:#x}/{mask:#x}"),
                            -code,
                        )
                        .into());
                    }
                }
            }
        }
    }

    /// Delete exactly these entries; returns how many the kernel deleted (an entry that
    /// vanished meanwhile, ENOENT, is not counted and is no error).
    async fn delete(&mut self, entries: &[Entry]) -> Result<usize, ApplyError> {
        let mut deleted = 0;
        for chunk in entries.chunks(DELETE_BATCH) {
            let first = self.seq.wrapping_add(1);
            for entry in chunk {
                let seq = self.next_seq();
                self.send(delete_message(entry), NLM_F_REQUEST | NLM_F_ACK, seq)
                    .await?;
            }
            let in_chunk = |seq: u32| (seq.wrapping_sub(first) as usize) < chunk.len();
            let mut pending = chunk.len();
            while pending > 0 {
                for (_, reply) in self.recv(in_chunk).await? {
                    let Reply::Error(code) = reply else { continue };
                    pending -= 1;
                    match -code {
                        0 => deleted += 1,
                        ENOENT => {}
                        errno => return Err(ConntrackError::errno("delete entry", errno).into()),
                    }
                }
            }
        }
        Ok(deleted)
    }
}

/// A delete of one entry by its original tuple (plus id and zone), never a filtered flush.
fn delete_message(entry: &Entry) -> NetfilterMessage {
    let mut attrs = vec![tuple_orig(&entry.orig)];
    if let Some(id) = &entry.id {
        attrs.push(ConntrackAttribute::Other(DefaultNla::new(
            CTA_ID,
            id.clone(),
        )));
    }
    if let Some(zone) = &entry.zone {
        attrs.push(ConntrackAttribute::Other(DefaultNla::new(
            CTA_ZONE,
            zone.clone(),
        )));
    }
    NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::from(entry.family), 0, 0),
        ConntrackMessage::Delete(attrs),
    )
}

/// `CTA_TUPLE_ORIG` with the dumped tuple. Typed when the crate can decode it, so the
/// attribute carries NLA_F_NESTED (a raw `ConntrackAttribute::Other` loses that flag; the
/// kernel's liberal attribute parsing accepts it anyway, so that is the fallback).
fn tuple_orig(raw: &[u8]) -> ConntrackAttribute {
    let typed: Result<Vec<Tuple>, _> = NlasIterator::new(raw)
        .map(|nla| nla.and_then(|nla| Tuple::parse(&nla)))
        .collect();
    if let Ok(tuples) = typed {
        let mut again = vec![0; tuples.as_slice().buffer_len()];
        tuples.as_slice().emit(&mut again);
        // Only if the crate re-emits exactly what the kernel sent.
        if again == raw {
            return ConntrackAttribute::CtaTupleOrig(tuples);
        }
    }
    ConntrackAttribute::Other(DefaultNla::new(CTA_TUPLE_ORIG, raw.to_vec()))
}

/// Split a datagram into its netlink messages, each with its sequence number.
fn parse_replies(buf: &[u8]) -> Result<Vec<(u32, Reply)>, ConntrackError> {
    let mut replies = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let msg = NetlinkBuffer::new_checked(&buf[offset..])
            .map_err(|e| ConntrackError::Protocol(format!("bad netlink message: {e}")))?;
        let payload = msg.payload();
        let status = || {
            payload
                .get(..4)
                .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        };
        let reply = match msg.message_type() {
            NLMSG_ERROR => Reply::Error(status().ok_or_else(|| {
                ConntrackError::Protocol("netlink error message too short".into())
            })?),
            NLMSG_DONE => Reply::Done(status().unwrap_or(0)),
            CT_NEW => Reply::Entry(parse_entry(payload)?),
            _ => Reply::Other,
        };
        replies.push((msg.sequence_number(), reply));
        // Messages are 4-byte aligned; new_checked guarantees length >= header size.
        offset += (msg.length() as usize).div_ceil(4) * 4;
    }
    Ok(replies)
}

/// Decode one dump entry: `struct nfgenmsg` then the attributes.
fn parse_entry(payload: &[u8]) -> Result<Entry, ConntrackError> {
    let bad = |what: &str| ConntrackError::Protocol(format!("bad conntrack entry: {what}"));
    if payload.len() < 4 {
        return Err(bad("no nfgenmsg header"));
    }
    let mut entry = Entry {
        family: payload[0],
        orig: Vec::new(),
        id: None,
        zone: None,
        mark: 0,
    };
    for nla in NlasIterator::new(&payload[4..]) {
        let nla = nla.map_err(|e| bad(&e.to_string()))?;
        let value = nla.value();
        match nla.kind() {
            CTA_TUPLE_ORIG => entry.orig = value.to_vec(),
            CTA_MARK => entry.mark = parse_u32_be(value).map_err(|e| bad(&e.to_string()))?,
            CTA_ID => entry.id = Some(value.to_vec()),
            CTA_ZONE => entry.zone = Some(value.to_vec()),
            _ => {}
        }
    }
    if entry.orig.is_empty() {
        return Err(bad("no original tuple"));
    }
    Ok(entry)
}

impl ConntrackDriver for ConntrackNetlink {
    async fn flush_mark(
        &mut self,
        mark: u32,
        mask: u32,
        family: Option<Family>,
    ) -> Result<usize, ApplyError> {
        check_filter(mark, mask, Purpose::Flush)?;
        let mut entries = self.dump(mark, mask).await?;
        if let Some(family) = family {
            let af = match family {
                Family::V4 => AF_INET,
                Family::V6 => AF_INET6,
            };
            entries.retain(|e| e.family == af);
        }
        self.delete(&entries).await
    }

    async fn count_mark(&mut self, mark: u32, mask: u32) -> Result<usize, ApplyError> {
        check_filter(mark, mask, Purpose::Count)?;
        Ok(self.dump(mark, mask).await?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkDeserializable;

    fn entry() -> Entry {
        Entry {
            family: 2,
            // CTA_TUPLE_IP { CTA_IP_V4_SRC 192.0.2.1 }, nested flag set, as the kernel sends it.
            orig: vec![12, 0, 1, 0x80, 8, 0, 1, 0, 192, 0, 2, 1],
            id: Some(vec![0xde, 0xad, 0xbe, 0xef]),
            zone: None,
            mark: 0x100,
        }
    }

    #[test]
    fn delete_names_one_entry_by_tuple_and_id() {
        let msg = delete_message(&entry());
        let mut bytes = vec![0; msg.buffer_len()];
        msg.emit(&mut bytes);
        // nfgenmsg: AF_INET, version 0, res_id 0.
        assert_eq!(&bytes[..4], &[2, 0, 0, 0]);
        // CTA_TUPLE_ORIG, nested, carrying the tuple unchanged.
        assert_eq!(&bytes[4..8], &[16, 0, 1, 0x80]);
        assert_eq!(&bytes[8..20], &entry().orig[..]);
        // CTA_ID.
        assert_eq!(&bytes[20..28], &[8, 0, 12, 0, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(bytes.len(), 28);
        // A delete with a tuple is what the netlink type says it is.
        let mut header = NetlinkHeader::default();
        header.message_type = (1 << 8) | 2; // NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE
        let parsed = <NetfilterMessage as NetlinkDeserializable>::deserialize(&header, &bytes)
            .expect("parses back");
        assert_eq!(parsed.header.family, NetfilterProtoFamily::IPv4);
    }

    #[test]
    fn tuple_the_crate_cannot_echo_is_sent_back_raw() {
        // Inner CTA_TUPLE_IP without NLA_F_NESTED (older kernels): the typed re-emission
        // would add the flag, so the raw bytes are sent unchanged instead.
        let raw = vec![12, 0, 1, 0, 8, 0, 1, 0, 192, 0, 2, 1];
        let attr = tuple_orig(&raw);
        assert!(matches!(attr, ConntrackAttribute::Other(_)), "{attr:?}");
        let mut bytes = vec![0; attr.buffer_len()];
        attr.emit(&mut bytes);
        assert_eq!(&bytes[..4], &[16, 0, 1, 0]);
        assert_eq!(&bytes[4..], &raw[..]);
        assert!(matches!(
            tuple_orig(&entry().orig),
            ConntrackAttribute::CtaTupleOrig(_)
        ));
    }

    #[test]
    fn parses_a_dump_datagram() {
        let entry_payload: Vec<u8> = [
            vec![2, 0, 0, 0],
            vec![16, 0, 1, 0x80],
            entry().orig,
            vec![8, 0, 8, 0, 0, 0, 1, 0],
            vec![8, 0, 12, 0, 0xde, 0xad, 0xbe, 0xef],
        ]
        .concat();
        let msg = |kind: u16, seq: u32, payload: &[u8]| {
            let len = u32::try_from(16 + payload.len()).unwrap();
            let mut m = Vec::new();
            m.extend(len.to_ne_bytes());
            m.extend(kind.to_ne_bytes());
            m.extend(0u16.to_ne_bytes());
            m.extend(seq.to_ne_bytes());
            m.extend(0u32.to_ne_bytes());
            m.extend(payload);
            m
        };
        let buf = [
            msg(CT_NEW, 7, &entry_payload),
            msg(NLMSG_DONE, 7, &0i32.to_ne_bytes()),
            msg(NLMSG_ERROR, 8, &(-2i32).to_ne_bytes()),
        ]
        .concat();
        let replies = parse_replies(&buf).expect("parses");
        assert_eq!(
            replies,
            vec![
                (7, Reply::Entry(entry())),
                (7, Reply::Done(0)),
                (8, Reply::Error(-2)),
            ]
        );
    }
}
