//! The messages of vibesync/1: handshake, commands, replies, events,
//! heartbeats and key rotation. Each is one frame kind (`y`) with a CBOR
//! body (`b`). Commands and replies are the JSON objects of
//! `docs/adapter-api.md` carried as CBOR; the adapter SDK hands them to the
//! engine as JSON unchanged.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vibesync_canonical::{ObjectId, Op, SceneObject};

use crate::batch::check_ids;
use crate::frame::Refusal;
use crate::keys::RotationPolicy;

/// Every kind of vibesync/1.
pub const KINDS: [&str; 13] = [
    "hello",
    "challenge",
    "prove",
    "welcome",
    "refused",
    "command",
    "commands",
    "reply",
    "replies",
    "event",
    "heartbeat",
    "rekey",
    "bye",
];

/// 32 bytes carried as a CBOR byte string (nonces, proofs, keys).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct B32(pub [u8; 32]);

impl std::fmt::Debug for B32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B32({}..)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for B32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for B32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = B32;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a 32-byte byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<B32, E> {
                <[u8; 32]>::try_from(v)
                    .map(B32)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Adapter → host, first frame: who I am and my nonce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: String,
    pub engine: String,
    pub kind: String,
    pub nonce: B32,
    /// The adapter takes `commands` frames and answers them with `replies`
    /// (`crate::batch`). Absent (old adapters) means no.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// Host → adapter: the host's nonce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    pub nonce: B32,
}

/// Adapter → host: HMAC(bootstrap secret, both nonces + engine name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prove {
    pub proof: B32,
}

/// Host → adapter: the host's own proof and the first session key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub proof: B32,
    pub session_id: String,
    pub key_id: u32,
    pub key: B32,
    pub rotation: RotationPolicy,
}

/// Either side: the peer refused something; carries a stable code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    pub code: String,
    pub message: String,
}

/// Host → adapter: a new session key, sealed under the current one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rekey {
    pub key_id: u32,
    pub key: B32,
}

/// Either side: orderly close.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bye {
    pub reason: String,
}

/// Adapter → host, every second on the heartbeat stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Unix ms of the engine main thread's last `poll` (its last pump).
    pub last_pump_ms: u64,
    /// ms between that pump and this heartbeat, by the adapter's clock:
    /// the host uses this (skew-free) to place the pump on its own clock.
    pub pump_age_ms: u64,
    /// Why the engine cannot mutate now (`compiling`, `play-mode`), if so.
    pub busy: Option<String>,
    /// Commands received but not yet polled by the main thread.
    pub queue_depth: u32,
    /// The adapter is frozen (PANIC) and refuses mutations.
    pub frozen: bool,
}

/// Host → engine command: `{"id": n, "kind": ..., ...}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub id: u64,
    pub body: CommandBody,
}

/// Read by hand: `flatten` and the body's `kind` tag would each buffer the
/// whole map before reading it. The host writes `id` and `kind` first, so
/// the hot kinds (`apply`, `commit`) are read straight into their fields;
/// any other kind or order goes through a JSON map and the derived reader.
impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> serde::de::Visitor<'de> for CommandVisitor {
    type Value = Command;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a command: a map with `id`, `kind` and the kind's fields")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Command, A::Error> {
        use serde::de::value::MapAccessDeserializer;
        #[derive(Deserialize)]
        struct Apply {
            tid: u64,
            ops: Vec<Op>,
        }
        #[derive(Deserialize)]
        struct Commit {
            tid: u64,
        }
        let mut seen = serde_json::Map::new();
        if let Some((key, value)) = map.next_entry::<String, Value>()? {
            let id = (key == "id").then(|| value.as_u64()).flatten();
            seen.insert(key, value);
            if let Some(id) = id
                && let Some((key, value)) = map.next_entry::<String, Value>()?
            {
                let body = match (key.as_str(), value.as_str()) {
                    ("kind", Some("apply")) => {
                        let Apply { tid, ops } =
                            Deserialize::deserialize(MapAccessDeserializer::new(map))?;
                        CommandBody::Apply { tid, ops }
                    }
                    ("kind", Some("commit")) => {
                        let Commit { tid } =
                            Deserialize::deserialize(MapAccessDeserializer::new(map))?;
                        CommandBody::Commit { tid }
                    }
                    _ => {
                        seen.insert(key, value);
                        return rest(seen, map);
                    }
                };
                return Ok(Command { id, body });
            }
        }
        rest(seen, map)
    }
}

/// The long way: every entry into a JSON map, then the derived reader.
fn rest<'de, A: serde::de::MapAccess<'de>>(
    mut seen: serde_json::Map<String, Value>,
    mut map: A,
) -> Result<Command, A::Error> {
    use serde::de::Error as _;
    while let Some((key, value)) = map.next_entry::<String, Value>()? {
        seen.insert(key, value);
    }
    let id = seen
        .remove("id")
        .ok_or_else(|| A::Error::missing_field("id"))?;
    let id = id
        .as_u64()
        .ok_or_else(|| A::Error::custom(format!("`id` must be an unsigned integer, not {id}")))?;
    let body = CommandBody::deserialize(Value::Object(seen)).map_err(A::Error::custom)?;
    Ok(Command { id, body })
}

/// Written by hand: serde's `flatten` would make an indefinite-length map,
/// which vibesync/1 frames never contain. The body is written straight into
/// a definite-length map with `id` first ([`IdFirst`]), with no JSON value
/// built on the way.
impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(IdFirst {
            id: self.id,
            inner: s,
        })
    }
}

/// A serializer for a [`CommandBody`] only: serde writes each variant of
/// that internally tagged enum as a struct (its tag a field of it), which
/// this turns into a map of one entry more, `id`, first. Anything else is
/// an error, which the types rule out.
struct IdFirst<S> {
    id: u64,
    inner: S,
}

/// The map [`IdFirst`] writes the body's fields into.
struct IdFirstFields<M>(M);

impl<M: serde::ser::SerializeMap> serde::ser::SerializeStruct for IdFirstFields<M> {
    type Ok = M::Ok;
    type Error = M::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        self.0.serialize_entry(key, value)
    }
    fn end(self) -> Result<M::Ok, M::Error> {
        self.0.end()
    }
}

macro_rules! not_a_command_body {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, S::Error> {
            Err(serde::ser::Error::custom("a command body serializes as a struct"))
        }
    )*};
}

impl<S: serde::Serializer> serde::Serializer for IdFirst<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeStruct = IdFirstFields<S::SerializeMap>;
    type SerializeSeq = serde::ser::Impossible<S::Ok, S::Error>;
    type SerializeTuple = serde::ser::Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = serde::ser::Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = serde::ser::Impossible<S::Ok, S::Error>;
    type SerializeMap = serde::ser::Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = serde::ser::Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = self.inner.serialize_map(Some(len + 1))?;
        map.serialize_entry("id", &self.id)?;
        Ok(IdFirstFields(map))
    }

    not_a_command_body! {
        serialize_bool(bool) -> S::Ok;
        serialize_i8(i8) -> S::Ok;
        serialize_i16(i16) -> S::Ok;
        serialize_i32(i32) -> S::Ok;
        serialize_i64(i64) -> S::Ok;
        serialize_u8(u8) -> S::Ok;
        serialize_u16(u16) -> S::Ok;
        serialize_u32(u32) -> S::Ok;
        serialize_u64(u64) -> S::Ok;
        serialize_f32(f32) -> S::Ok;
        serialize_f64(f64) -> S::Ok;
        serialize_char(char) -> S::Ok;
        serialize_str(&str) -> S::Ok;
        serialize_bytes(&[u8]) -> S::Ok;
        serialize_none() -> S::Ok;
        serialize_unit() -> S::Ok;
        serialize_unit_struct(&'static str) -> S::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> S::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "a command body serializes as a struct",
        ))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "a command body serializes as a struct",
        ))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "a command body serializes as a struct",
        ))
    }
}

/// Serializes a JSON value with `null` as CBOR null. (serde_json hands
/// `null` to serializers as a unit, which cbor4ii writes as an empty array.)
pub struct Json<'a>(pub &'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    s.serialize_u64(u)
                } else if let Some(i) = n.as_i64() {
                    s.serialize_i64(i)
                } else {
                    s.serialize_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(x) => s.serialize_str(x),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Json(v))?;
                }
                seq.end()
            }
            Value::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, &Json(v))?;
                }
                map.end()
            }
        }
    }
}

fn json<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    Json(v).serialize(s)
}

fn json_opt<S: serde::Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&Json(v)),
        None => s.serialize_none(),
    }
}

/// The command kinds of `docs/adapter-api.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandBody {
    Apply {
        tid: u64,
        ops: Vec<Op>,
    },
    Verify {
        tid: u64,
        ids: Vec<ObjectId>,
    },
    Rollback {
        tid: u64,
        #[serde(serialize_with = "json")]
        undo_token: Value,
    },
    Commit {
        tid: u64,
    },
    Snapshot,
    Resync {
        objects: Vec<SceneObject>,
    },
    Freeze {
        reason: String,
    },
    Thaw,
    Preview {
        width: u32,
        height: u32,
        #[serde(default)]
        ids: Option<Vec<ObjectId>>,
    },
}

impl CommandBody {
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Apply { .. } => "apply",
            CommandBody::Verify { .. } => "verify",
            CommandBody::Rollback { .. } => "rollback",
            CommandBody::Commit { .. } => "commit",
            CommandBody::Snapshot => "snapshot",
            CommandBody::Resync { .. } => "resync",
            CommandBody::Freeze { .. } => "freeze",
            CommandBody::Thaw => "thaw",
            CommandBody::Preview { .. } => "preview",
        }
    }

    /// Commands that change tracked state on purpose and are refused during
    /// PANIC. Rollback, resync, freeze and thaw are how PANIC is handled, so
    /// they stay allowed.
    pub fn is_new_mutation(&self) -> bool {
        matches!(self, CommandBody::Apply { .. } | CommandBody::Commit { .. })
    }
}

/// Engine error codes of `docs/adapter-api.md`.
pub const REPLY_ERROR_CODES: [&str; 11] = [
    "no-such-object",
    "already-exists",
    "cycle",
    "malformed",
    "frozen",
    "busy",
    "undo-token-lost",
    "script-error",
    "unsupported",
    "internal",
    "timeout",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyError {
    pub code: String,
    pub message: String,
}

/// Engine → host: `{"id", "ok", "result"|"error"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub ok: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "json_opt"
    )]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
}

impl Reply {
    pub fn ok(id: u64, result: Value) -> Reply {
        Reply {
            id,
            ok: true,
            result: Some(result),
            error: None,
        }
    }
    pub fn err(id: u64, code: &str, message: impl Into<String>) -> Reply {
        Reply {
            id,
            ok: false,
            result: None,
            error: Some(ReplyError {
                code: code.into(),
                message: message.into(),
            }),
        }
    }
    /// Checks the ok/result/error invariant.
    pub fn validate(&self) -> Result<(), String> {
        match (self.ok, &self.result, &self.error) {
            (true, Some(_), None) => Ok(()),
            (false, None, Some(e)) if REPLY_ERROR_CODES.contains(&e.code.as_str()) => Ok(()),
            (false, None, Some(e)) => Err(format!(
                "reply error code `{}` is not one of {REPLY_ERROR_CODES:?}",
                e.code
            )),
            _ => Err(
                "a reply has `ok: true` with `result`, or `ok: false` with `error`, never both"
                    .into(),
            ),
        }
    }
}

/// Engine → host: an edit made in the engine, in the canonical frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Change { ops: Vec<Op> },
}

/// One frame's message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Hello(Hello),
    Challenge(Challenge),
    Prove(Prove),
    Welcome(Welcome),
    Refused(Refused),
    Command(Command),
    /// Host → adapter, `{cmds: [command, ...]}`: several commands, run in
    /// order (only to an adapter whose `hello` said `batch`).
    Commands(Vec<Command>),
    Reply(Reply),
    /// Adapter → host, `{replies: [reply, ...]}`: answers to a `commands`
    /// frame, in command order.
    Replies(Vec<Reply>),
    Event(Event),
    Heartbeat(Heartbeat),
    Rekey(Rekey),
    Bye(Bye),
}

/// The body of a `commands` frame.
#[derive(Serialize, Deserialize)]
struct CommandsBody<T> {
    cmds: T,
}

/// The body of a `replies` frame.
#[derive(Serialize, Deserialize)]
struct RepliesBody<T> {
    replies: T,
}

impl Message {
    /// The frame kind `y`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Challenge(_) => "challenge",
            Message::Prove(_) => "prove",
            Message::Welcome(_) => "welcome",
            Message::Refused(_) => "refused",
            Message::Command(_) => "command",
            Message::Commands(_) => "commands",
            Message::Reply(_) => "reply",
            Message::Replies(_) => "replies",
            Message::Event(_) => "event",
            Message::Heartbeat(_) => "heartbeat",
            Message::Rekey(_) => "rekey",
            Message::Bye(_) => "bye",
        }
    }

    /// The CBOR body `b`.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_body_into(&mut out);
        out
    }

    /// Appends the CBOR body to `out` (the frame sealer writes it straight
    /// into the record buffer).
    pub fn encode_body_into(&self, out: &mut Vec<u8>) {
        fn enc<T: Serialize>(v: &T, out: &mut Vec<u8>) {
            let buf = cbor4ii::serde::to_vec(std::mem::take(out), v)
                .expect("message bodies always encode");
            *out = buf;
        }
        match self {
            Message::Hello(m) => enc(m, out),
            Message::Challenge(m) => enc(m, out),
            Message::Prove(m) => enc(m, out),
            Message::Welcome(m) => enc(m, out),
            Message::Refused(m) => enc(m, out),
            Message::Command(m) => enc(m, out),
            Message::Commands(m) => enc(&CommandsBody { cmds: m }, out),
            Message::Reply(m) => enc(m, out),
            Message::Replies(m) => enc(&RepliesBody { replies: m }, out),
            Message::Event(m) => enc(m, out),
            Message::Heartbeat(m) => enc(m, out),
            Message::Rekey(m) => enc(m, out),
            Message::Bye(m) => enc(m, out),
        }
    }

    /// Decodes a body whose bytes were already checked by the scanner.
    pub fn decode_body(kind: &str, body: &[u8]) -> Result<Message, Refusal> {
        let bad = |reason: String| Refusal::BadBody {
            kind: kind.into(),
            reason,
        };
        fn dec<'a, T: Deserialize<'a>>(kind: &str, b: &'a [u8]) -> Result<T, Refusal> {
            cbor4ii::serde::from_slice(b).map_err(|e| Refusal::BadBody {
                kind: kind.into(),
                reason: e.to_string(),
            })
        }
        Ok(match kind {
            "hello" => Message::Hello(dec(kind, body)?),
            "challenge" => Message::Challenge(dec(kind, body)?),
            "prove" => Message::Prove(dec(kind, body)?),
            "welcome" => Message::Welcome(dec(kind, body)?),
            "refused" => Message::Refused(dec(kind, body)?),
            "command" => Message::Command(dec(kind, body)?),
            "commands" => {
                let b: CommandsBody<Vec<Command>> = dec(kind, body)?;
                check_ids("cmds", b.cmds.iter().map(|c| c.id)).map_err(bad)?;
                Message::Commands(b.cmds)
            }
            "reply" => {
                let r: Reply = dec(kind, body)?;
                r.validate().map_err(bad)?;
                Message::Reply(r)
            }
            "replies" => {
                let b: RepliesBody<Vec<Reply>> = dec(kind, body)?;
                check_ids("replies", b.replies.iter().map(|r| r.id)).map_err(bad)?;
                for (i, r) in b.replies.iter().enumerate() {
                    r.validate()
                        .map_err(|reason| bad(format!("field `replies[{i}]`: {reason}")))?;
                }
                Message::Replies(b.replies)
            }
            "event" => Message::Event(dec(kind, body)?),
            "heartbeat" => Message::Heartbeat(dec(kind, body)?),
            "rekey" => Message::Rekey(dec(kind, body)?),
            "bye" => Message::Bye(dec(kind, body)?),
            other => return Err(Refusal::UnknownKind(other.into())),
        })
    }
}
