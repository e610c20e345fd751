//! The store in Redis, shared by any number of server instances (`SESSION_STORE=redis://…`).
//! Every key expires by itself, so Redis needs no clean-up. Expiries go to Redis as durations
//! (`PX`), not as instants: Redis counts them by its own clock, so that a server instance whose
//! clock is off does not shorten or stretch a lock (a renewal lock of 15 s set with an instant by
//! a clock 15 s behind would expire as it is set, and single-flight would silently stop).
//! The connection reconnects by itself after an outage; each command fails after
//! [`OPERATION_TIMEOUT`] rather than hang a request.

use std::sync::LazyLock;

use redis::{aio::ConnectionManager, aio::ConnectionManagerConfig, AsyncCommands, Script};

use super::{StoreError, OPERATION_TIMEOUT};

/// Every key of this app, so that a Redis shared with other apps stays tidy.
const PREFIX: &str = "oidc-session:";

/// Writes ARGV[2] (expiring in ARGV[3] ms) if KEYS[1] holds exactly ARGV[1].
static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 \
         else return 0 end",
    )
});

/// Deletes KEYS[1] if it holds exactly ARGV[1]: a lock released only by its owner.
static COMPARE_AND_DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
});

// Sets (the logout index) are sorted sets, each member scored by its own expiry, so that members
// go one by one, as in the other stores. A plain set would expire whole, and every write of one of
// its sessions would keep it alive: an active user's set would list every session they ever had,
// and a back-channel logout would read each. A plain set an older version left is read as one,
// and turned into a sorted set at its next write, its members kept until the plain set's expiry.

/// Adds ARGV[1] to KEYS[1] until ARGV[2] (ms), drops the members expired at ARGV[3] (now), and
/// keeps the set until its last member's expiry (ARGV[4] ms from now for this one).
static SET_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('TYPE', KEYS[1]).ok == 'set' then \
           local members = redis.call('SMEMBERS', KEYS[1]) \
           local ttl = redis.call('PTTL', KEYS[1]) \
           local until_ms = ARGV[2] \
           if ttl > 0 then until_ms = ARGV[3] + ttl end \
           redis.call('DEL', KEYS[1]) \
           for _, member in ipairs(members) do redis.call('ZADD', KEYS[1], until_ms, member) end \
           if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end \
         end \
         redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) \
         redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) \
         redis.call('PEXPIRE', KEYS[1], ARGV[4], 'NX') \
         redis.call('PEXPIRE', KEYS[1], ARGV[4], 'GT') \
         return 1",
    )
});

/// The members of KEYS[1] not expired at ARGV[1] (now).
static SET_MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('TYPE', KEYS[1]).ok == 'set' then return redis.call('SMEMBERS', KEYS[1]) end \
         return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')",
    )
});

/// Removes ARGV[1] from KEYS[1].
static SET_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('TYPE', KEYS[1]).ok == 'set' then return redis.call('SREM', KEYS[1], ARGV[1]) end \
         return redis.call('ZREM', KEYS[1], ARGV[1])",
    )
});

pub struct RedisKv {
    connection: ConnectionManager,
    client: redis::Client,
}

fn error(error: redis::RedisError) -> StoreError {
    StoreError(format!("Redis: {error}"))
}

/// A Redis URL fit for a log line: without its user name and password.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        Err(_) => "(a Redis URL that does not parse)".to_owned(),
    }
}

fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The time from now to `expires_at_ms`, for Redis to count by its own clock; at least 1 ms
/// (Redis refuses 0).
fn ttl_ms(expires_at_ms: u64) -> u64 {
    expires_at_ms.saturating_sub(super::now_ms()).max(1)
}

impl RedisKv {
    /// Connects, and fails at once (not after retries for ever) if Redis does not answer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let at = |problem: &dyn std::fmt::Display| StoreError(format!("Redis at {}: {problem}", redacted(url)));
        let client = redis::Client::open(url).map_err(|e| at(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPERATION_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1);
        let connect = client.get_connection_manager_with_config(config);
        let mut connection = tokio::time::timeout(OPERATION_TIMEOUT * 2, connect)
            .await
            .map_err(|_| at(&"did not answer"))?
            .map_err(|e| at(&e))?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await.map_err(|e| at(&e))?;
        // The logout index needs `PEXPIRE … NX | GT` (Redis 7): with an older Redis every sign-in
        // would fail at its first write, so say so now (if the server lets us ask).
        let info: Result<String, _> = redis::cmd("INFO").arg("server").query_async(&mut connection).await;
        let version = info.ok().and_then(|info| {
            let version = info.lines().find_map(|line| line.strip_prefix("redis_version:"))?.trim().to_owned();
            Some((version.split('.').next()?.parse::<u32>().ok()?, version))
        });
        if let Some((major, version)) = version.filter(|(major, _)| *major < 7) {
            return Err(at(&format_args!("Redis 7 or later is needed, this one is version {version} ({major})")));
        }
        Ok(Self { connection, client })
    }

    /// Delivers every message published on `channel` (by any instance) to `deliver`, for as long
    /// as the server runs; subscribes again after a Redis outage, and then calls `resumed`: what
    /// was published meanwhile is lost.
    pub fn subscribe(
        &self,
        channel: &str,
        deliver: impl Fn(String) + Send + Sync + 'static,
        resumed: impl Fn() + Send + Sync + 'static,
    ) {
        let (client, channel) = (self.client.clone(), key(channel));
        tokio::spawn(async move {
            let mut lost = false;
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            if std::mem::take(&mut lost) {
                                resumed();
                            }
                            let mut messages = pubsub.on_message();
                            while let Some(message) = futures::StreamExt::next(&mut messages).await {
                                if let Ok(payload) = message.get_payload::<String>() {
                                    deliver(payload);
                                }
                            }
                        }
                        tracing::warn!("lost the Redis subscription to session events; subscribing again");
                    }
                    Err(error) => tracing::warn!(%error, "cannot subscribe to session events in Redis; retrying"),
                }
                lost = true;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    /// Runs `command` on the connection, and once more if it failed on the connection itself.
    /// After an outage the connection manager learns that its connection is gone only from a
    /// command that fails, and connects again for the next: without the second try, the first
    /// request each instance serves after Redis is back would fail for nothing. A command that
    /// failed so was not run, or is harmless run twice (a compare-and-set then reads as a lost
    /// race, which its callers already handle).
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match command(self.connection.clone()).await {
            Err(e) if e.is_connection_dropped() || e.is_connection_refusal() => {
                command(self.connection.clone()).await.map_err(error)
            }
            other => other.map_err(error),
        }
    }

    /// Runs a command (see [`Self::run`]).
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        self.run(|mut c| async move { command.query_async(&mut c).await }).await
    }

    /// Runs a script (see [`Self::run`]).
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { invocation.invoke_async(&mut c).await }).await
    }

    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|mut c| async move { c.get(key(name)).await }).await
    }

    pub async fn set(&self, name: &str, value: Vec<u8>, expires_at_ms: u64) -> Result<(), StoreError> {
        let mut command = redis::cmd("SET");
        command.arg(key(name)).arg(value).arg("PX").arg(ttl_ms(expires_at_ms));
        self.query(&command).await
    }

    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.run(|mut c| async move { c.del(key(name)).await }).await
    }

    pub async fn compare_and_set(
        &self,
        name: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        match expected {
            None => {
                let mut command = redis::cmd("SET");
                command.arg(key(name)).arg(value).arg("NX").arg("PX").arg(ttl_ms(expires_at_ms));
                let set: Option<String> = self.query(&command).await?;
                Ok(set.is_some())
            }
            Some(expected) => {
                let mut invocation = COMPARE_AND_SET.key(key(name));
                invocation.arg(expected).arg(value).arg(ttl_ms(expires_at_ms));
                let changed: i64 = self.invoke(&invocation).await?;
                Ok(changed == 1)
            }
        }
    }

    /// Adds `member` until `expires_at_ms` (see [`SET_ADD`]); Redis 7's `PEXPIRE NX` gives a new
    /// set its expiry, `GT` only ever moves it later.
    pub async fn set_add(&self, name: &str, member: &str, expires_at_ms: u64) -> Result<(), StoreError> {
        let mut invocation = SET_ADD.key(key(name));
        invocation.arg(member).arg(expires_at_ms).arg(super::now_ms()).arg(ttl_ms(expires_at_ms));
        let _: i64 = self.invoke(&invocation).await?;
        Ok(())
    }

    pub async fn set_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let mut invocation = SET_MEMBERS.key(key(name));
        invocation.arg(super::now_ms());
        self.invoke(&invocation).await
    }

    pub async fn set_remove(&self, name: &str, member: &str) -> Result<(), StoreError> {
        let mut invocation = SET_REMOVE.key(key(name));
        invocation.arg(member);
        let _: i64 = self.invoke(&invocation).await?;
        Ok(())
    }

    /// Publishes `message` on `channel` to every instance (Redis pub/sub).
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        let _: i64 = self.run(|mut c| async move { c.publish(key(channel), message).await }).await?;
        Ok(())
    }

    pub async fn compare_and_delete(&self, name: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let mut invocation = COMPARE_AND_DELETE.key(key(name));
        invocation.arg(expected);
        let deleted: i64 = self.invoke(&invocation).await?;
        Ok(deleted == 1)
    }
}
