//! What a store call fails with, for the layers above to decide what it
//! means: `AppError` is built from it in one place (`src/error.rs`).

use crate::error::Dependency;

#[derive(Debug)]
pub enum StoreError {
    /// The service could not be reached, or did not answer in time.
    Unreachable(Dependency, String),
    /// It answered with an error: a bug or a state we did not expect.
    Refused(Dependency, String),
}

impl StoreError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable(..))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unreachable(dep, cause) => {
                write!(f, "{} unreachable: {cause}", dep.as_str())
            }
            StoreError::Refused(dep, cause) => write!(f, "{} refused: {cause}", dep.as_str()),
        }
    }
}

/// Only a Redis that cannot be reached is "unavailable": a script error or
/// a wrong type is a bug, not an outage. In a Redis Cluster a master that
/// cannot be reached, or a cluster that refuses commands until it is whole
/// again (CLUSTERDOWN, TRYAGAIN, MASTERDOWN), is an outage too.
impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> StoreError {
        use redis::{ErrorKind, ServerErrorKind};
        let cluster_outage = matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                )
        );
        let unreachable = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            || cluster_outage;
        if unreachable {
            StoreError::Unreachable(Dependency::Redis, e.to_string())
        } else {
            StoreError::Refused(Dependency::Redis, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Redis error used to be "unavailable" (and opened the breaker):
    /// only one that says Redis cannot be reached is.
    #[test]
    fn only_an_unreachable_redis_is_unavailable_a_refused_command_is_a_bug() {
        let io =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(StoreError::from(io).is_unreachable());
        let wrong =
            redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not an integer"));
        assert!(!StoreError::from(wrong).is_unreachable());
    }
}
