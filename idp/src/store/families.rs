//! Refresh token families (RFC 9700 §4.14.2): every refresh token descended from one
//! authorization, rotated at each use, with reuse detection.
//!
//! A family remembers its authorization (client, subject, `sid`, `auth_time`, scopes), its
//! absolute expiry (`created_at` plus the absolute lifetime, which rotation never extends), its
//! last use (for the idle lifetime), how often it rotated, and whether it was revoked and why.
//!
//! Each refresh token is stored only as its SHA-256 with the family and the generation it was
//! issued in; the family's current generation tells a current token from a retired one. So
//! rotating is two map writes, and a retired token presented again (RFC 9700 §4.14.2: one of
//! two parties is an attacker, and the provider cannot tell which) is recognised and revokes the
//! whole family, the current token included. The access tokens issued from a family point to
//! it (see `AccessTokenRecord`), so they are refused from the same moment.
//!
//! Two plaintexts are kept, each only where a feature needs it: the current token of a client
//! with a grace window (to hand the same successor out again), and the newest retired token
//! when the admin API is on (to simulate its reuse). With a state file both are written to it
//! too, with their family, so that a restart changes nothing for them either: a retry inside the
//! grace window after a restart still gets the same successor (a server killed right after
//! answering is just the lost response the window is for), and the admin API can still simulate
//! reuse. Neither gives a reader of the file more than the signing keys beside them already do;
//! and without a grace window and the admin API, no plaintext refresh token reaches it.

use std::{fmt, str::FromStr, sync::Arc};

use serde::Serialize;

use super::{AccessTokenRecord, AccessTokenRow, Change, Inner, Saving, Store, TokenHash};

/// How long a family is remembered after its absolute expiry, so that its tokens are refused as
/// expired or revoked rather than unknown, and the admin API can still list it.
pub(super) const FAMILY_MEMORY_SECS: u64 = 3600;

/// A family's id: random, not secret (it appears in logs and the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FamilyId(pub(super) u64);

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for FamilyId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Self)
    }
}

/// The authorization a family carries, the same for every token in it (OIDC Core §12.2: a
/// refreshed ID token has the `sub`, `sid` and `auth_time` of the original authentication).
/// Shared behind an `Arc`, so that a refresh takes it out of the lock without copying.
#[derive(Debug)]
pub struct FamilyGrant {
    pub client_id: String,
    pub sub: String,
    pub sid: String,
    pub auth_time: u64,
    pub scopes: Vec<String>,
}

/// Which of a user's families: those of one provider session, of one client.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FamilyFilter {
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Why a family was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokedReason {
    /// A retired refresh token, or the authorization code, was presented again.
    Reuse,
    /// The client revoked one of its tokens (RFC 7009).
    Revocation,
    /// Through the admin API.
    Admin,
}

impl RevokedReason {
    /// Its name in the admin API and in the state file.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Reuse => "reuse",
            Self::Revocation => "revocation",
            Self::Admin => "admin",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Self> {
        [Self::Reuse, Self::Revocation, Self::Admin].into_iter().find(|reason| reason.as_str() == name)
    }
}

#[derive(Debug)]
pub(super) struct Family {
    grant: Arc<FamilyGrant>,
    seq: u64,
    created_at: u64,
    /// Absolute: `created_at` plus the absolute lifetime, never moved.
    expires_at: u64,
    /// Issue of the current token, or its last use when tokens do not rotate.
    last_used_at: u64,
    rotations: u64,
    /// The generation of the current token; every token of a lower one is retired.
    generation: u64,
    /// When the newest retired token was retired.
    rotated_at: u64,
    /// The current token in plaintext, kept only for a client with a grace window.
    current_token: Option<String>,
    /// The newest retired token in plaintext, kept only when the admin API is on.
    retired_token: Option<String>,
    pub(super) revoked: Option<RevokedReason>,
}

/// What changes in a family over its life, as the state file keeps it: written whole at each
/// change, so that a write never depends on the one before.
pub(crate) struct FamilyState {
    pub last_used_at: u64,
    pub rotations: u64,
    pub generation: u64,
    pub rotated_at: u64,
    pub current_token: Option<String>,
    pub retired_token: Option<String>,
    pub revoked: Option<RevokedReason>,
}

/// A family as the state file keeps it.
pub(crate) struct FamilyRow {
    pub id: FamilyId,
    pub grant: Arc<FamilyGrant>,
    pub seq: u64,
    pub created_at: u64,
    pub expires_at: u64,
    pub state: FamilyState,
}

/// A refresh token as the state file keeps it: its hash, where it belongs, and when its family
/// is forgotten (and it with it).
pub(crate) struct RefreshTokenRow {
    pub hash: TokenHash,
    pub family: FamilyId,
    pub generation: u64,
    pub forget_at: u64,
}

impl Family {
    pub(super) fn state(&self) -> FamilyState {
        FamilyState {
            last_used_at: self.last_used_at,
            rotations: self.rotations,
            generation: self.generation,
            rotated_at: self.rotated_at,
            current_token: self.current_token.clone(),
            retired_token: self.retired_token.clone(),
            revoked: self.revoked,
        }
    }

    pub(super) fn row(&self, id: FamilyId) -> FamilyRow {
        FamilyRow {
            id,
            grant: self.grant.clone(),
            seq: self.seq,
            created_at: self.created_at,
            expires_at: self.expires_at,
            state: self.state(),
        }
    }

    /// The family a row of the state file describes.
    pub(super) fn restore(row: FamilyRow) -> Self {
        let FamilyRow { grant, seq, created_at, expires_at, state, .. } = row;
        Self {
            grant,
            seq,
            created_at,
            expires_at,
            last_used_at: state.last_used_at,
            rotations: state.rotations,
            generation: state.generation,
            rotated_at: state.rotated_at,
            current_token: state.current_token,
            retired_token: state.retired_token,
            revoked: state.revoked,
        }
    }

    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    fn forget_at(&self) -> u64 {
        self.expires_at + FAMILY_MEMORY_SECS
    }

    /// Revokes the family; false if it already was.
    pub(super) fn revoke(&mut self, reason: RevokedReason) -> bool {
        let newly = self.revoked.is_none();
        if newly {
            self.revoked = Some(reason);
            self.current_token = None;
        }
        newly
    }

    pub(super) fn forgotten_at(&self, now: u64) -> bool {
        now >= self.forget_at()
    }

    fn active(&self, now: u64, idle_secs: u64) -> bool {
        self.revoked.is_none() && now < self.expires_at && now < self.last_used_at + idle_secs
    }
}

#[derive(Debug)]
pub(super) struct RefreshTokenRecord {
    pub(super) family: FamilyId,
    pub(super) generation: u64,
}

/// A family about to start from a redeemed authorization code.
#[derive(Debug)]
pub struct NewFamily {
    pub grant: FamilyGrant,
    /// The first refresh token, hashed.
    pub token_hash: TokenHash,
    /// Its plaintext, only if the client has a grace window.
    pub token: Option<String>,
    pub absolute_secs: u64,
    pub now: u64,
}

/// How a client's refresh request is treated: from its registration and the lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub idle_secs: u64,
    pub grace_secs: u64,
    /// Keep the newest retired token in plaintext (for the admin API's simulated reuse).
    pub keep_retired: bool,
}

/// The successor of a rotated refresh token, made before the lock is taken.
#[derive(Debug)]
pub struct Successor {
    pub hash: TokenHash,
    /// Its plaintext, only if the client has a grace window.
    pub token: Option<String>,
}

/// A `refresh_token` grant request, with everything it needs already computed.
#[derive(Debug)]
pub struct RefreshRequest<'a> {
    pub client_id: &'a str,
    pub token_hash: TokenHash,
    /// The presented token in plaintext, kept as the newest retired one if the policy says so.
    pub presented: Option<String>,
    /// `None` when the client does not rotate: the presented token stays valid.
    pub successor: Option<Successor>,
    /// A narrower scope for the new access token (RFC 6749 §6); never wider than the family's.
    pub requested_scopes: Option<&'a [String]>,
    /// The `jti` of the access token about to be signed, recorded in the family.
    pub jti: String,
    pub access_token_expires_at: u64,
    pub now: u64,
}

/// The outcome of a refresh request.
#[derive(Debug)]
pub enum Refresh {
    Granted {
        family: FamilyId,
        grant: Arc<FamilyGrant>,
        /// When the family's absolute lifetime ends.
        expires_at: u64,
        /// Set when the newest retired token came back inside the grace window: the successor
        /// it had already been given, handed out again.
        reissued: Option<String>,
    },
    Refused(Refusal),
}

/// Why a refresh token was refused; each becomes `invalid_grant` with its own description,
/// except `ScopeNotGranted`, which is `invalid_scope`.
#[derive(Debug)]
pub enum Refusal {
    Unknown,
    OtherClient,
    Revoked,
    /// Unused for longer than the idle lifetime.
    IdleExpired,
    /// The family's absolute lifetime is over.
    FamilyExpired,
    ScopeNotGranted,
    /// A retired token came back: the family is now revoked.
    Reused {
        family: FamilyId,
        grant: Arc<FamilyGrant>,
    },
}

/// A family as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct FamilySummary {
    pub id: String,
    pub client_id: String,
    pub sub: String,
    pub created_at: u64,
    pub last_used_at: u64,
    pub expires_at: u64,
    pub rotations: u64,
    pub active: bool,
    pub revoked_reason: Option<RevokedReason>,
}

impl Store {
    /// Starts a family from the redeemed `code`, whose access token `jti` becomes its first.
    /// If the code was replayed meanwhile (its access token is already revoked), the family is
    /// born revoked; the returned flag says so.
    pub fn start_family(&self, code: &str, jti: &str, new: NewFamily) -> (FamilyId, bool, Saving) {
        let NewFamily { grant, token_hash, token, absolute_secs, now } = new;
        let mut inner = self.lock();
        self.purge_if_due(&mut inner, now);
        let id = inner.new_family_id();
        let seq = inner.next_family_seq;
        inner.next_family_seq += 1;
        let mut family = Family {
            grant: Arc::new(grant),
            seq,
            created_at: now,
            expires_at: now + absolute_secs,
            last_used_at: now,
            rotations: 0,
            generation: 0,
            rotated_at: now,
            current_token: token,
            retired_token: None,
            revoked: None,
        };
        if let Some(code) = inner.codes.get_mut(code) {
            code.family = Some(id);
        }
        let (access_token_row, born_revoked) = match inner.access_tokens.get_mut(jti) {
            Some(access_token) => {
                access_token.family = Some(id);
                (Some(access_token.row), access_token.revoked)
            }
            None => (None, false),
        };
        if born_revoked {
            family.revoke(RevokedReason::Reuse);
        }
        let saving = self.save(|| Change::FamilyStarted {
            family: Box::new(family.row(id)),
            token: RefreshTokenRow { hash: token_hash, family: id, generation: 0, forget_at: family.forget_at() },
            access_token_row,
        });
        inner.families.insert(id, family);
        inner.refresh_tokens.insert(token_hash, RefreshTokenRecord { family: id, generation: 0 });
        (id, born_revoked, saving)
    }

    /// The `refresh_token` grant's one critical section: checks the presented token and, if it
    /// is current, retires it and makes the successor current, so that of several concurrent
    /// requests with one token exactly one wins. A retired token revokes the family, unless it
    /// is the newest retired one, back from the same client inside its grace window. The
    /// [`Saving`] covers whatever changed: a rotation, a revocation, the new access token.
    pub fn refresh(&self, request: RefreshRequest<'_>, policy: RefreshPolicy) -> (Refresh, Saving) {
        let RefreshRequest {
            client_id,
            token_hash,
            presented,
            successor,
            requested_scopes,
            jti,
            access_token_expires_at,
            now,
        } = request;
        let refused = |refusal| (Refresh::Refused(refusal), Saving::done());
        let mut inner = self.lock();
        self.purge_if_due(&mut inner, now);
        let Inner { families, refresh_tokens, access_tokens, next_access_token_row, .. } = &mut *inner;
        let Some(&RefreshTokenRecord { family: id, generation }) = refresh_tokens.get(&token_hash) else {
            return refused(Refusal::Unknown);
        };
        let Some(family) = families.get_mut(&id) else {
            return refused(Refusal::Unknown);
        };
        // The order matters: a token of another client says nothing about this one's family;
        // and expiry is not reuse, so an expired family is not revoked by a late retired token.
        if family.grant.client_id != client_id {
            return refused(Refusal::OtherClient);
        }
        if family.revoked.is_some() {
            return refused(Refusal::Revoked);
        }
        if now >= family.expires_at {
            return refused(Refusal::FamilyExpired);
        }
        if now >= family.last_used_at + policy.idle_secs {
            return refused(Refusal::IdleExpired);
        }
        let scope_granted = |family: &Family| {
            requested_scopes.is_none_or(|requested| requested.iter().all(|s| family.grant.scopes.contains(s)))
        };
        let row = *next_access_token_row;
        let access_token_row =
            || AccessTokenRow { row, jti: jti.clone(), expires_at: access_token_expires_at, family: Some(id) };
        let access_token =
            AccessTokenRecord { row, expires_at: access_token_expires_at, revoked: false, family: Some(id) };

        if generation < family.generation {
            let newest_retired = generation + 1 == family.generation;
            let in_grace = now < family.rotated_at.saturating_add(policy.grace_secs);
            if let (true, true, Some(successor)) = (newest_retired, in_grace, &family.current_token) {
                if !scope_granted(family) {
                    return refused(Refusal::ScopeNotGranted);
                }
                let reissued = Some(successor.clone());
                let saving = self.save(|| Change::AccessTokenIssued(access_token_row()));
                *next_access_token_row += 1;
                access_tokens.insert(jti, access_token);
                return (
                    Refresh::Granted {
                        family: id,
                        grant: family.grant.clone(),
                        expires_at: family.expires_at,
                        reissued,
                    },
                    saving,
                );
            }
            family.revoke(RevokedReason::Reuse);
            let saving = self.save(|| Change::FamilyChanged { id, state: family.state() });
            return (Refresh::Refused(Refusal::Reused { family: id, grant: family.grant.clone() }), saving);
        }

        if !scope_granted(family) {
            return refused(Refusal::ScopeNotGranted);
        }
        family.last_used_at = now;
        let mut new_token = None;
        if let Some(Successor { hash, token }) = successor {
            family.generation += 1;
            family.rotations += 1;
            family.rotated_at = now;
            family.current_token = token;
            if policy.keep_retired {
                family.retired_token = presented;
            }
            refresh_tokens.insert(hash, RefreshTokenRecord { family: id, generation: family.generation });
            new_token = Some(hash);
        }
        let saving = self.save(|| Change::Refreshed {
            id,
            state: family.state(),
            token: new_token.map(|hash| RefreshTokenRow {
                hash,
                family: id,
                generation: family.generation,
                forget_at: family.forget_at(),
            }),
            access_token: access_token_row(),
        });
        *next_access_token_row += 1;
        access_tokens.insert(jti, access_token);
        (
            Refresh::Granted { family: id, grant: family.grant.clone(), expires_at: family.expires_at, reissued: None },
            saving,
        )
    }

    /// Revokes the family of a refresh token (current or retired) if `client_id` owns it
    /// (RFC 7009 §2.1). `Some(newly revoked)` if the token is the client's, `None` otherwise.
    pub fn revoke_family_of(&self, token_hash: &TokenHash, client_id: &str) -> Option<(FamilyId, bool, Saving)> {
        let mut inner = self.lock();
        let Inner { families, refresh_tokens, .. } = &mut *inner;
        let id = refresh_tokens.get(token_hash)?.family;
        let family = families.get_mut(&id).filter(|f| f.grant.client_id == client_id)?;
        let newly = family.revoke(RevokedReason::Revocation);
        let saving =
            if newly { self.save(|| Change::FamilyChanged { id, state: family.state() }) } else { Saving::done() };
        Some((id, newly, saving))
    }

    /// Revokes a family by id: `Some(newly revoked)`, or `None` if unknown.
    pub fn revoke_family(&self, id: FamilyId, reason: RevokedReason) -> Option<(bool, Saving)> {
        let mut inner = self.lock();
        let family = inner.families.get_mut(&id)?;
        let newly = family.revoke(reason);
        let saving =
            if newly { self.save(|| Change::FamilyChanged { id, state: family.state() }) } else { Saving::done() };
        Some((newly, saving))
    }

    /// The families of `sub` that the store still remembers, newest first.
    pub fn families_of(&self, sub: &str, now: u64, idle_secs: u64) -> Vec<FamilySummary> {
        let inner = self.lock();
        let mut families: Vec<(&FamilyId, &Family)> =
            inner.families.iter().filter(|(_, family)| family.grant.sub == sub).collect();
        families.sort_by_key(|(_, family)| std::cmp::Reverse(family.seq));
        families
            .into_iter()
            .map(|(id, family)| FamilySummary {
                id: id.to_string(),
                client_id: family.grant.client_id.clone(),
                sub: family.grant.sub.clone(),
                created_at: family.created_at,
                last_used_at: family.last_used_at,
                expires_at: family.expires_at,
                rotations: family.rotations,
                active: family.active(now, idle_secs),
                revoked_reason: family.revoked,
            })
            .collect()
    }

    /// The newest active family of `sub` (of its provider session `sid` and its client
    /// `client_id`, where given): its id, its client, and its newest retired refresh token if it
    /// has one (and the store kept it).
    pub fn newest_active_family(
        &self,
        sub: &str,
        of: &FamilyFilter,
        now: u64,
        idle_secs: u64,
    ) -> Option<(FamilyId, String, Option<String>)> {
        let inner = self.lock();
        let wanted = |grant: &FamilyGrant| {
            grant.sub == sub
                && of.sid.as_ref().is_none_or(|sid| *sid == grant.sid)
                && of.client_id.as_ref().is_none_or(|client_id| *client_id == grant.client_id)
        };
        inner
            .families
            .iter()
            .filter(|(_, family)| wanted(&family.grant) && family.active(now, idle_secs))
            .max_by_key(|(_, family)| family.seq)
            .map(|(id, family)| (*id, family.grant.client_id.clone(), family.retired_token.clone()))
    }
}

impl Inner {
    fn new_family_id(&self) -> FamilyId {
        loop {
            let id = FamilyId(rand::random());
            if !self.families.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{random_token, token_hash, AuthorizationCode, AuthorizationRequest};

    const POLICY: RefreshPolicy = RefreshPolicy { idle_secs: 100, grace_secs: 0, keep_retired: true };

    fn grant() -> FamilyGrant {
        FamilyGrant {
            client_id: "c".into(),
            sub: "s".into(),
            sid: "sid".into(),
            auth_time: 0,
            scopes: vec!["openid".into(), "offline_access".into()],
        }
    }

    /// A store with one family started at `now` from a fresh code; returns its first token.
    fn store_with_family(now: u64) -> (Store, FamilyId, String) {
        let store = Store::default();
        let request = AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "http://c/cb".into(),
            scopes: vec![],
            state: None,
            nonce: None,
            code_challenge: String::new(),
            prompt_consent: false,
            hinted_sub: None,
        };
        let code = store.issue_code(AuthorizationCode {
            request,
            sub: "s".into(),
            sid: "sid".into(),
            auth_time: now,
            issued_at: now,
        });
        let jti = random_token();
        let (redemption, _) = store.redeem_code(&code, "c", now, 60, &jti, now + 60);
        assert!(matches!(redemption, super::super::Redemption::Redeemed(_)));
        let token = random_token();
        let new = NewFamily { grant: grant(), token_hash: token_hash(&token), token: None, absolute_secs: 1000, now };
        let (id, born_revoked, _) = store.start_family(&code, &jti, new);
        assert!(!born_revoked);
        (store, id, token)
    }

    fn refresh(store: &Store, token: &str, successor: Option<&str>, now: u64, policy: RefreshPolicy) -> Refresh {
        let request = RefreshRequest {
            client_id: "c",
            token_hash: token_hash(token),
            presented: Some(token.to_owned()),
            successor: successor.map(|s| Successor { hash: token_hash(s), token: Some(s.to_owned()) }),
            requested_scopes: None,
            jti: random_token(),
            access_token_expires_at: now + 60,
            now,
        };
        store.refresh(request, policy).0
    }

    #[test]
    fn expiry_is_checked_before_reuse_so_a_late_retired_token_does_not_revoke() {
        let (store, id, first) = store_with_family(0);
        assert!(matches!(refresh(&store, &first, Some("second"), 10, POLICY), Refresh::Granted { .. }));
        assert!(matches!(refresh(&store, &first, None, 1000, POLICY), Refresh::Refused(Refusal::FamilyExpired)));
        assert_eq!(store.families_of("s", 1000, 100)[0].revoked_reason, None);
        let revoke = || store.revoke_family(id, RevokedReason::Admin).map(|(newly, _)| newly);
        assert_eq!(revoke(), Some(true));
        assert_eq!(revoke(), Some(false), "revoked once");
    }

    #[test]
    fn the_grace_window_reissues_only_the_newest_retired_token() {
        let policy = RefreshPolicy { grace_secs: 5, ..POLICY };
        let (store, _, first) = store_with_family(0);
        assert!(matches!(refresh(&store, &first, Some("second"), 0, policy), Refresh::Granted { reissued: None, .. }));
        let again = refresh(&store, &first, Some("unused"), 4, policy);
        assert!(matches!(again, Refresh::Granted { reissued: Some(ref s), .. } if s == "second"));
        assert!(matches!(refresh(&store, "second", Some("third"), 4, policy), Refresh::Granted { .. }));
        assert!(matches!(refresh(&store, &first, None, 4, policy), Refresh::Refused(Refusal::Reused { .. })));
    }

    #[test]
    fn a_forgotten_family_takes_its_tokens_with_it() {
        let (store, _, first) = store_with_family(0);
        store.purge_if_due(&mut store.lock(), 1000 + FAMILY_MEMORY_SECS);
        assert!(store.lock().families.is_empty());
        assert!(store.lock().refresh_tokens.is_empty());
        assert!(matches!(
            refresh(&store, &first, None, 1000 + FAMILY_MEMORY_SECS, POLICY),
            Refresh::Refused(Refusal::Unknown)
        ));
    }

    #[test]
    fn revocation_reasons_have_the_same_names_in_the_state_file_as_in_the_admin_api() {
        for reason in [RevokedReason::Reuse, RevokedReason::Revocation, RevokedReason::Admin] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
            assert_eq!(RevokedReason::from_name(reason.as_str()), Some(reason));
        }
        assert_eq!(RevokedReason::from_name("stolen"), None);
    }

    #[test]
    fn family_ids_round_trip_through_their_text_form() {
        let id = FamilyId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<FamilyId>().unwrap(), id);
    }
}
