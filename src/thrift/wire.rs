//! The Python service's `user.thrift` on the wire, read and written with the
//! `thrift` crate's binary protocol (what `thrift --gen rs` would generate
//! for this IDL, by hand because the service is two methods):
//!
//! ```text
//! struct User { 1: i64 id, 2: optional string password, 3: optional byte state,
//!               4: optional string create_time, 5: optional string update_time }
//! service UserService { string ping(), void createUser(1: User user) }
//! ```
//!
//! Unknown fields, and known fields of an unexpected type, are skipped as
//! Thrift does; anything the protocol cannot read is an error, after which
//! the connection's byte stream cannot be trusted any more.

use std::fmt;

use thrift::protocol::{
    TFieldIdentifier, TInputProtocol, TMessageIdentifier, TMessageType, TOutputProtocol,
    TStructIdentifier, TType,
};
use thrift::{ApplicationError, ApplicationErrorKind, TConfiguration};

/// What a peer may announce: strings up to 64 KiB, containers of 1024
/// elements, structs nested 16 deep. The protocol checks these before it
/// allocates, so a forged length cannot make us reserve gigabytes.
pub fn limits() -> TConfiguration {
    TConfiguration::builder()
        .max_string_size(Some(64 * 1024))
        .max_container_size(Some(1024))
        .max_recursion_depth(Some(16))
        .build()
        .unwrap_or_default()
}

/// `createUser`'s argument. `Debug` hides the password.
#[derive(Default)]
pub struct User {
    pub id: Option<i64>,
    pub password: Option<String>,
    pub state: Option<i8>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("state", &self.state)
            .finish()
    }
}

#[derive(Debug)]
pub enum Call {
    Ping,
    CreateUser(User),
    /// A method `UserService` does not have; its arguments were skipped.
    Unknown,
}

/// What the service answers when a call succeeds.
pub enum Reply {
    Ping(&'static str),
    CreateUser,
}

pub type Result<T> = thrift::Result<T>;

/// Reads a whole struct, handing each field to `field` (which reads it or
/// returns `false` to have it skipped).
fn read_struct(
    p: &mut dyn TInputProtocol,
    mut field: impl FnMut(&mut dyn TInputProtocol, &TFieldIdentifier) -> Result<bool>,
) -> Result<()> {
    p.read_struct_begin()?;
    loop {
        let f = p.read_field_begin()?;
        if f.field_type == TType::Stop {
            break;
        }
        if !field(p, &f)? {
            p.skip(f.field_type)?;
        }
        p.read_field_end()?;
    }
    p.read_struct_end()
}

fn read_user(p: &mut dyn TInputProtocol) -> Result<User> {
    let mut user = User::default();
    read_struct(p, |p, f| {
        match (f.id, f.field_type) {
            (Some(1), TType::I64) => user.id = Some(p.read_i64()?),
            (Some(2), TType::String) => user.password = Some(p.read_string()?),
            (Some(3), TType::I08) => user.state = Some(p.read_i8()?),
            (Some(4), TType::String) => user.create_time = Some(p.read_string()?),
            (Some(5), TType::String) => user.update_time = Some(p.read_string()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(user)
}

/// The arguments of the call `name` (the message header is read already).
pub fn read_args(p: &mut dyn TInputProtocol, name: &str) -> Result<Call> {
    let call = match name {
        "ping" => {
            read_struct(p, |_, _| Ok(false))?;
            Call::Ping
        }
        "createUser" => {
            let mut user = None;
            read_struct(p, |p, f| {
                if (f.id, f.field_type) == (Some(1), TType::Struct) {
                    user = Some(read_user(p)?);
                    return Ok(true);
                }
                Ok(false)
            })?;
            // A missing argument reads as an empty User (Thrift's default);
            // the service then refuses it for its missing id.
            Call::CreateUser(user.unwrap_or_default())
        }
        _ => {
            read_struct(p, |_, _| Ok(false))?;
            Call::Unknown
        }
    };
    p.read_message_end()?;
    Ok(call)
}

pub fn write_reply(o: &mut dyn TOutputProtocol, name: &str, seq: i32, reply: &Reply) -> Result<()> {
    o.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Reply, seq))?;
    o.write_struct_begin(&TStructIdentifier::new(format!("{name}_result")))?;
    match reply {
        Reply::Ping(text) => {
            o.write_field_begin(&TFieldIdentifier::new("success", TType::String, 0))?;
            o.write_string(text)?;
            o.write_field_end()?;
        }
        Reply::CreateUser => {} // void: an empty result struct
    }
    o.write_field_stop()?;
    o.write_struct_end()?;
    o.write_message_end()?;
    o.flush()
}

/// A `TApplicationException` answering the call `name`/`seq`.
pub fn write_exception(
    o: &mut dyn TOutputProtocol,
    name: &str,
    seq: i32,
    kind: ApplicationErrorKind,
    message: &str,
) -> Result<()> {
    o.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Exception, seq))?;
    thrift::Error::write_application_error_to_out_protocol(
        &ApplicationError::new(kind, message),
        o,
    )?;
    o.write_message_end()?;
    o.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};

    /// A createUser call as thriftpy2 sends it (strict binary protocol).
    fn create_user_call(password: &str) -> Vec<u8> {
        let mut o = TBinaryOutputProtocol::new(Vec::new(), true);
        o.write_message_begin(&TMessageIdentifier::new(
            "createUser",
            TMessageType::Call,
            7,
        ))
        .unwrap();
        o.write_struct_begin(&TStructIdentifier::new("createUser_args"))
            .unwrap();
        o.write_field_begin(&TFieldIdentifier::new("user", TType::Struct, 1))
            .unwrap();
        o.write_struct_begin(&TStructIdentifier::new("User"))
            .unwrap();
        o.write_field_begin(&TFieldIdentifier::new("id", TType::I64, 1))
            .unwrap();
        o.write_i64(105).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("password", TType::String, 2))
            .unwrap();
        o.write_string(password).unwrap();
        // an unknown field, skipped
        o.write_field_begin(&TFieldIdentifier::new("x", TType::Double, 9))
            .unwrap();
        o.write_double(1.5).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("state", TType::I08, 3))
            .unwrap();
        o.write_i8(1).unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_message_end().unwrap();
        o.transport
    }

    #[test]
    fn a_create_user_call_is_read_with_its_fields_and_unknown_ones_skipped() {
        let bytes = create_user_call("123456");
        let mut p = TBinaryInputProtocol::with_config(&bytes[..], false, limits());
        let header = p.read_message_begin().unwrap();
        assert_eq!(
            (header.name.as_str(), header.sequence_number),
            ("createUser", 7)
        );
        let Call::CreateUser(user) = read_args(&mut p, &header.name).unwrap() else {
            panic!("not createUser");
        };
        assert_eq!(user.id, Some(105));
        assert_eq!(user.password.as_deref(), Some("123456"));
        assert_eq!(user.state, Some(1));
        assert!(!format!("{user:?}").contains("123456"));
    }

    #[test]
    fn a_forged_string_length_is_refused_before_anything_is_allocated() {
        let mut bytes = create_user_call("x");
        // The password's length prefix sits just before its one byte.
        let at = bytes.iter().position(|&b| b == b'x').unwrap() - 4;
        bytes[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        let mut p = TBinaryInputProtocol::with_config(&bytes[..], false, limits());
        let header = p.read_message_begin().unwrap();
        assert!(read_args(&mut p, &header.name).is_err());
    }

    #[test]
    fn replies_and_exceptions_are_messages_a_client_can_read() {
        let mut o = TBinaryOutputProtocol::new(Vec::new(), true);
        write_reply(&mut o, "ping", 3, &Reply::Ping("pong")).unwrap();
        write_exception(&mut o, "createUser", 4, ApplicationErrorKind::Unknown, "no").unwrap();
        let bytes = o.transport;
        let mut p = TBinaryInputProtocol::new(&bytes[..], true);
        let m = p.read_message_begin().unwrap();
        assert_eq!(
            (m.message_type, m.sequence_number),
            (TMessageType::Reply, 3)
        );
        let mut text = None;
        read_struct(&mut p, |p, f| {
            text = Some(p.read_string()?);
            assert_eq!(f.id, Some(0));
            Ok(true)
        })
        .unwrap();
        assert_eq!(text.as_deref(), Some("pong"));
        let m = p.read_message_begin().unwrap();
        assert_eq!(m.message_type, TMessageType::Exception);
        let e = thrift::Error::read_application_error_from_in_protocol(&mut p).unwrap();
        assert_eq!(e.message, "no");
    }
}
