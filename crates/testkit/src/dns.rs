//! A DNS server on loopback that answers from a table: real DNS packets
//! over UDP, so the resolver code under test runs as it does in production.
//! The table can change while the server runs ([`FakeDns::set`]), as a
//! domain's owner publishes a record after tidings showed it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

/// What a name resolves to.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// (preference, exchange); an exchange of "." is a null MX.
    pub mx: Vec<(u16, String)>,
    pub a: Vec<Ipv4Addr>,
    /// Each TXT record as its strings (a long value is several strings).
    pub txt: Vec<Vec<String>>,
}

type Zones = Arc<RwLock<HashMap<String, Zone>>>;

pub struct FakeDns {
    pub addr: SocketAddr,
    zones: Zones,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDns {
    /// Serve `zones` (names without the trailing dot); other names are NXDOMAIN.
    pub async fn start(zones: HashMap<String, Zone>) -> Self {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = sock.local_addr().expect("addr");
        let zones: Zones = Arc::new(RwLock::new(zones));
        let served = zones.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_bytes(&buf[..n]) else {
                    continue;
                };
                let reply = answer(&query, &served.read().expect("zones"));
                if let Ok(bytes) = reply.to_bytes() {
                    let _ = sock.send_to(&bytes, peer).await;
                }
            }
        });
        Self { addr, zones, task }
    }

    /// Serve `zone` for `name` from now on (replacing what it had).
    pub fn set(&self, name: &str, zone: Zone) {
        self.zones
            .write()
            .expect("zones")
            .insert(name.trim_end_matches('.').to_ascii_lowercase(), zone);
    }

    /// Publish one TXT record at `name`, split into strings of at most
    /// 255 bytes as a zone file would.
    pub fn publish_txt(&self, name: &str, value: &str) {
        let strings = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let mut zones = self.zones.write().expect("zones");
        zones.entry(key).or_default().txt.push(strings);
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &Message, zones: &HashMap<String, Zone>) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    for q in query.queries() {
        reply.add_query(q.clone());
        let name = q.name().to_utf8();
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(zone) = zones.get(&key) else {
            reply.set_response_code(ResponseCode::NXDomain);
            continue;
        };
        match q.query_type() {
            RecordType::MX => {
                for (pref, host) in &zone.mx {
                    let exchange = if host == "." {
                        Name::root()
                    } else {
                        Name::from_str(&format!("{host}.")).expect("name")
                    };
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::MX(MX::new(*pref, exchange)),
                    ));
                }
            }
            RecordType::A => {
                for ip in &zone.a {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(*ip))));
                }
            }
            RecordType::TXT => {
                for strings in &zone.txt {
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::TXT(TXT::new(strings.clone())),
                    ));
                }
            }
            _ => {}
        }
    }
    reply
}
