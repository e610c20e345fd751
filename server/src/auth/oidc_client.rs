//! The relying party's view of the provider, through the `openidconnect` crate: discovery, the
//! authorization request (code flow, PKCE S256, state, nonce), the code exchange and the refresh
//! (RFC 6749 §6), each with full ID token validation (OIDC Core §3.1.3.7, §12.2) against a JWKS
//! that is fetched again when the provider rotates its keys.

use std::time::Duration;

use app::auth::SessionJournal;
use openidconnect::{
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim,
        CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
        CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
    },
    reqwest, AccessToken, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, ExtraTokenFields, IdToken, IdTokenClaims, IdTokenFields, IdTokenVerifier, Nonce,
    NonceVerifier, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    jwks::{JwksCache, Keys, KidSource, RefetchFailed, ASYMMETRIC_ALGS},
    record::{AuthenticatedSession, IdTokenJwt, TokenSet},
};
use crate::{config::Config, error::AuthError};

/// Claims beyond OIDC Core's standard set that this app reads: the provider session id, which
/// back-channel logout names (Back-Channel Logout 1.0 §2.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}
impl AdditionalClaims for SessionClaims {}

/// Token response fields beyond RFC 6749's: `refresh_expires_in`, the seconds the refresh token
/// stays usable, which Keycloak and the embedded provider send (0 or absent: not said).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefreshLifetime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}
impl ExtraTokenFields for RefreshLifetime {}

type TokenFields = IdTokenFields<
    SessionClaims,
    RefreshLifetime,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<TokenFields, CoreTokenType>;
type OidcIdToken = IdToken<SessionClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type OidcIdTokenClaims = IdTokenClaims<SessionClaims, CoreGenderClaim>;
/// What discovery says beyond OIDC Core's metadata, for revocation (RFC 7009 §4 via RFC 8414),
/// RP-initiated logout and session management.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_session_iframe: Option<String>,
    /// RFC 9207 §3: the provider puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}
impl openidconnect::AdditionalProviderMetadata for SessionMetadata {}

type ProviderMetadata = openidconnect::ProviderMetadata<
    SessionMetadata,
    CoreAuthDisplay,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreClaimName,
    openidconnect::core::CoreClaimType,
    openidconnect::core::CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreResponseMode,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

/// The client after discovery; its token endpoint is made required (`EndpointSet`) once checked.
type Client<HasTokenUrl = EndpointSet> = openidconnect::Client<
    SessionClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
    EndpointMaybeSet,
>;

/// How far an ID token's `iat` may be from now (clock skew either way, plus transit).
const IAT_TOLERANCE_SECS: i64 = 300;
/// How often an ID token signed with a new key tries to fetch the JWKS that has it, 1 s then 2 s
/// apart: the provider has already rotated the refresh token it answers, so giving up ends the
/// session.
const JWKS_FETCH_TRIES: u32 = 3;
const JWKS_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Assumed when a token response leaves out `expires_in` (RFC 6749 §5.1 only recommends it).
const DEFAULT_ACCESS_TOKEN_SECS: u64 = 300;

/// A discovered provider and this app's registration at it.
pub struct OidcClient {
    client: Client,
    issuer: String,
    http: reqwest::Client,
    scopes: Vec<Scope>,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
    jwks: JwksCache,
    auto_userinfo: bool,
    silent_redirect: RedirectUrl,
    client_secret: Option<openidconnect::ClientSecret>,
    session: SessionMetadata,
}

/// Which redirect URI a request names: each flow has its own, registered at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectTarget {
    /// `/auth/callback`: interactive sign-in.
    SignIn,
    /// `/auth/silent-callback`: silent renew in a hidden iframe.
    Silent,
}

/// What `/auth/login` keeps to finish the flow at `/auth/callback`.
pub struct AuthorizationStart {
    pub url: Url,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub pkce_verifier: PkceCodeVerifier,
}

/// Why the provider could not be used at start-up.
#[derive(Debug, thiserror::Error)]
#[error("OIDC_ISSUER: {0}")]
pub struct DiscoveryError(String);

/// A token to revoke, and what kind it is (RFC 7009 `token_type_hint`).
pub enum Revocable<'a> {
    AccessToken(&'a AccessToken),
    RefreshToken(&'a RefreshToken),
}

/// What a refresh brought back, validated.
#[derive(Clone)]
pub struct Refreshed {
    pub access_token: AccessToken,
    pub expires_in: u64,
    /// The provider's new refresh token; `None` if it sent none (it does not rotate).
    pub refresh_token: Option<RefreshToken>,
    /// A new ID token, if the provider sent one: validated, and of the same subject.
    pub id_token: Option<(IdTokenJwt, app::auth::IdTokenClaims, String)>,
    /// How long the refresh token stays usable, if the provider says.
    pub refresh_expires_in: Option<u64>,
}

/// Why a refresh did not renew the session.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: expired, revoked or reused).
    /// Its description is logged, never relied on: other providers do not say why.
    #[error("the provider refused the refresh token: {0}")]
    InvalidGrant(String),
    /// The provider could not be reached, timed out, failed, or refused for a reason the user
    /// cannot fix (`invalid_client`…). `public` is what the browser may read.
    #[error("{detail}")]
    Transient { public: &'static str, detail: String },
    /// The refreshed ID token failed validation or names another subject.
    #[error("the refreshed ID token is not acceptable: {0}")]
    IdTokenRejected(String),
}

/// What a `nonce` in an ID token must be: the sign-in's, or, after a refresh, absent or still
/// the sign-in's (OIDC Core §12.2), unless configured to ignore it.
#[derive(Clone, Copy)]
enum NonceCheck<'a> {
    SignIn(&'a Nonce),
    AfterRefresh { original: &'a Nonce, ignore: bool },
}

impl NonceVerifier for NonceCheck<'_> {
    fn verify(self, nonce: Option<&Nonce>) -> Result<(), String> {
        match (self, nonce) {
            (Self::SignIn(expected), nonce) => expected.verify(nonce),
            (Self::AfterRefresh { .. }, None) | (Self::AfterRefresh { ignore: true, .. }, Some(_)) => Ok(()),
            (Self::AfterRefresh { original, ignore: false }, Some(nonce)) => original.verify(Some(nonce)),
        }
    }
}

impl OidcClient {
    /// Fetches the provider's metadata and keys. Redirects are not followed: a provider that
    /// redirects its token endpoint is one this client should not talk to (SSRF).
    pub async fn discover(config: &Config) -> Result<Self, DiscoveryError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DiscoveryError(format!("HTTP client: {e}")))?;
        let issuer = config.issuer.as_str();
        let metadata = ProviderMetadata::discover_async(config.issuer.clone(), &http)
            .await
            .map_err(|e| DiscoveryError(format!("discovery at {issuer} failed: {}", error_chain(&e))))?;
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| DiscoveryError(format!("{issuer} has no token endpoint")))?;
        // Asymmetric algorithms only: `none` never, and HMAC would make the client secret a
        // signing key the provider shares with every holder of it.
        let allowed_algs: Vec<CoreJwsSigningAlgorithm> =
            metadata.id_token_signing_alg_values_supported().iter().filter(|alg| is_asymmetric(alg)).cloned().collect();
        if allowed_algs.is_empty() {
            return Err(DiscoveryError(format!("{issuer} offers no asymmetric ID token signing algorithm")));
        }
        let jwks =
            JwksCache::load(metadata.jwks_uri().url().to_string(), http.clone()).await.map_err(DiscoveryError)?;
        let session = metadata.additional_metadata().clone();
        let redirect_url = RedirectUrl::new(config.callback_url())
            .map_err(|e| DiscoveryError(format!("callback URL {}: {e}", config.callback_url())))?;
        let silent_redirect = RedirectUrl::new(config.silent_callback_url())
            .map_err(|e| DiscoveryError(format!("callback URL {}: {e}", config.silent_callback_url())))?;
        let client = Client::<EndpointMaybeSet>::from_provider_metadata(
            metadata,
            config.client_id.clone(),
            config.client_secret.clone(),
        )
        .set_redirect_uri(redirect_url)
        .set_token_uri(token_url);
        let scopes = config.scopes.iter().filter(|s| *s != "openid").cloned().map(Scope::new).collect();
        Ok(Self {
            client,
            issuer: issuer.to_owned(),
            http,
            scopes,
            allowed_algs,
            jwks,
            auto_userinfo: config.auto_userinfo,
            silent_redirect,
            client_secret: config.client_secret.clone(),
            session,
        })
    }

    /// What discovery said about logout and session management.
    pub fn session_metadata(&self) -> &SessionMetadata {
        &self.session
    }

    /// The origins the browser is sent to or frames: the issuer's and those of the authorization
    /// endpoint, `check_session_iframe` and `end_session_endpoint`, which a provider may serve
    /// from other hosts. Pages allow them in `frame-src` and `form-action`.
    pub fn browser_origins(&self) -> Vec<String> {
        let endpoints = [
            Some(self.issuer.as_str()),
            Some(self.client.auth_uri().as_str()),
            self.session.check_session_iframe.as_deref(),
            self.session.end_session_endpoint.as_deref(),
        ];
        let mut origins: Vec<String> = endpoints
            .into_iter()
            .flatten()
            .filter_map(|url| Url::parse(url).ok())
            .map(|url| url.origin().ascii_serialization())
            .filter(|origin| origin != "null")
            .collect();
        origins.dedup();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Revokes `token` (RFC 7009 §2.1) at the provider's revocation endpoint, authenticated as
    /// at the token endpoint. `Ok(false)` if the provider has no revocation endpoint. (The
    /// `oauth2` crate's revocation refuses plain-http endpoints, which the local development
    /// provider is; the request is a single form POST.)
    pub async fn revoke(&self, token: Revocable<'_>) -> Result<bool, String> {
        let Some(endpoint) = &self.session.revocation_endpoint else {
            return Ok(false);
        };
        let (value, hint) = match token {
            Revocable::AccessToken(token) => (token.secret().as_str(), "access_token"),
            Revocable::RefreshToken(token) => (token.secret().as_str(), "refresh_token"),
        };
        let client_id = self.client.client_id().as_str();
        let mut form = vec![("token", value), ("token_type_hint", hint)];
        let mut request = self.http.post(endpoint);
        match &self.client_secret {
            // RFC 6749 §2.3.1: both parts form-urlencoded before the Basic encoding.
            Some(secret) => {
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(client_id), Some(encode(secret.secret())));
            }
            None => form.push(("client_id", client_id)),
        }
        let response = request.form(&form).send().await.map_err(|e| error_chain(&e))?;
        match response.status() {
            status if status.is_success() => Ok(true),
            status => Err(format!("the revocation endpoint answered {status}")),
        }
    }

    /// RP-Initiated Logout 1.0 §2: where to send the browser to end the provider session too,
    /// if the provider has an `end_session_endpoint`.
    pub fn end_session_url(&self, id_token_hint: &str, post_logout_redirect_uri: &str, state: &str) -> Option<Url> {
        let mut url = Url::parse(self.session.end_session_endpoint.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("client_id", self.client.client_id().as_str())
            .append_pair("state", state);
        Some(url)
    }

    /// The authorization request: code flow, fresh `state` and `nonce`, and a PKCE S256 challenge.
    pub fn start(&self) -> AuthorizationStart {
        let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .url();
        AuthorizationStart { url, state, nonce, pkce_verifier }
    }

    /// The silent renew request (OIDC Core §3.1.2.1): `prompt=none`, so the provider answers
    /// from its session or with `login_required` and never shows anything; `id_token_hint`, so
    /// it never answers for another user; otherwise as [`OidcClient::start`].
    pub fn start_silent(&self, id_token_hint: &str) -> AuthorizationStart {
        let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .set_redirect_uri(std::borrow::Cow::Borrowed(&self.silent_redirect))
            .add_prompt(CoreAuthPrompt::None)
            .add_extra_param("id_token_hint", id_token_hint)
            .url();
        AuthorizationStart { url, state, nonce, pkce_verifier }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// RFC 9207 §2.4: an authorization response's `iss` must be this provider's; and a provider
    /// that says it always sends one (§3) must have sent it, or the response is not its own.
    pub fn response_issuer_is_ours(&self, iss: Option<&str>) -> bool {
        match iss {
            Some(iss) => iss == self.issuer,
            None => !self.session.authorization_response_iss_parameter_supported,
        }
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Exchanges the code, validates the ID token, and returns the session to keep.
    pub async fn exchange_code(
        &self,
        code: String,
        pkce_verifier: PkceCodeVerifier,
        nonce: Nonce,
        target: RedirectTarget,
        now: u64,
    ) -> Result<AuthenticatedSession, AuthError> {
        let mut request = self.client.exchange_code(AuthorizationCode::new(code)).set_pkce_verifier(pkce_verifier);
        if target == RedirectTarget::Silent {
            request = request.set_redirect_uri(std::borrow::Cow::Borrowed(&self.silent_redirect));
        }
        let response = request.request_async(&self.http).await.map_err(|e| match e {
            RequestTokenError::ServerResponse(response) => AuthError::TokenRefused {
                error: response.error().as_ref().to_owned(),
                description: response.error_description().cloned().unwrap_or_default(),
            },
            other => AuthError::ProviderUnavailable(error_chain(&other)),
        })?;

        let id_token =
            response.id_token().ok_or(AuthError::InvalidIdToken("the token response has no ID token".into()))?;
        let claims =
            self.verified_claims(id_token, NonceCheck::SignIn(&nonce), now).await.map_err(AuthError::InvalidIdToken)?;
        let subject = claims.subject().to_string();
        let userinfo_claims = match self.auto_userinfo {
            true => self.userinfo(response.access_token(), claims).await,
            false => None,
        };
        Ok(AuthenticatedSession {
            display_name: display_name(claims),
            sid: claims.additional_claims().sid.clone(),
            id_token_claims: claims_map(claims),
            subject,
            nonce,
            auth_time: claims.auth_time().map(|time| time.timestamp()),
            userinfo_claims,
            session_state: None,
            journal: SessionJournal::starting(now, refresh_expires_in(&response).map(|secs| now + secs)),
            tokens: TokenSet {
                access_token: response.access_token().clone(),
                access_token_expires_at: now + expires_in(&response),
                refresh_token: response.refresh_token().cloned(),
                id_token: IdTokenJwt::new(id_token.to_string()),
            },
        })
    }

    /// The refresh token grant (RFC 6749 §6). A new ID token, if the provider sends one, is
    /// validated like the first, without expecting a new nonce, and must tell of the same
    /// authentication ([`same_authentication`]).
    pub async fn refresh(
        &self,
        refresh_token: &RefreshToken,
        session: &AuthenticatedSession,
        ignore_nonce: bool,
        now: u64,
    ) -> Result<Refreshed, RefreshError> {
        let response =
            self.client.exchange_refresh_token(refresh_token).request_async(&self.http).await.map_err(|e| match e {
                RequestTokenError::ServerResponse(response) => {
                    let description = response.error_description().cloned().unwrap_or_default();
                    match response.error() {
                        CoreErrorResponseType::InvalidGrant => RefreshError::InvalidGrant(description),
                        other => RefreshError::Transient {
                            public: "the provider refused the refresh",
                            detail: format!("the provider refused the refresh: {} ({description})", other.as_ref()),
                        },
                    }
                }
                RequestTokenError::Request(error) => RefreshError::Transient {
                    public: if error_chain(&error).contains("timed out") {
                        "the provider timed out"
                    } else {
                        "the provider is unreachable"
                    },
                    detail: error_chain(&error),
                },
                other => RefreshError::Transient { public: "the provider failed", detail: error_chain(&other) },
            })?;

        let id_token = match response.id_token() {
            None => None,
            Some(id_token) => {
                let check = NonceCheck::AfterRefresh { original: &session.nonce, ignore: ignore_nonce };
                let claims = self.verified_claims(id_token, check, now).await.map_err(RefreshError::IdTokenRejected)?;
                same_authentication(session, claims).map_err(RefreshError::IdTokenRejected)?;
                Some((IdTokenJwt::new(id_token.to_string()), claims_map(claims), display_name(claims)))
            }
        };
        Ok(Refreshed {
            access_token: response.access_token().clone(),
            expires_in: expires_in(&response),
            refresh_token: response.refresh_token().cloned(),
            id_token,
            refresh_expires_in: refresh_expires_in(&response),
        })
    }

    /// Validates an ID token with the cached keys, and once more after fetching the JWKS again
    /// if it names a key the cache lacks (the provider rotated its keys). Every ID token here
    /// came from the token endpoint, so the re-fetch uses the allowance of
    /// [`KidSource::TokenEndpoint`], which forged logout tokens cannot use up.
    async fn verified_claims<'t>(
        &self,
        id_token: &'t OidcIdToken,
        nonce: NonceCheck<'_>,
        now: u64,
    ) -> Result<&'t OidcIdTokenClaims, String> {
        let keys = self.jwks.current();
        let claims = match id_token.claims(&self.verifier(&keys, now), nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let mut tries = 1;
                let keys = loop {
                    match self.jwks.refetch_after(&keys, KidSource::TokenEndpoint).await {
                        Ok(keys) => break keys,
                        Err(RefetchFailed::Unreachable) if tries < JWKS_FETCH_TRIES => {
                            tokio::time::sleep(JWKS_RETRY_DELAY * tries).await;
                            tries += 1;
                        }
                        Err(RefetchFailed::Unreachable) => {
                            return Err("the provider's JWKS could not be fetched for the token's new key".into())
                        }
                        Err(RefetchFailed::TooSoon) => {
                            return Err("no key in the provider's JWKS matches the token's kid".into())
                        }
                    }
                };
                id_token.claims(&self.verifier(&keys, now), nonce).map_err(|e| error_chain(&e))
            }
            other => other.map_err(|e| error_chain(&e)),
        }?;
        // OIDC Core §3.1.3.7 step 5: an `azp` must be this client (the crate checks `aud`, and
        // refuses extra audiences, but not `azp`).
        authorized_party_is(claims.authorized_party().map(|azp| azp.as_str()), self.client.client_id().as_str())?;
        Ok(claims)
    }

    fn verifier(&self, keys: &Keys, now: u64) -> IdTokenVerifier<'static, CoreJsonWebKey> {
        IdTokenVerifier::new_public_client(
            self.client.client_id().clone(),
            openidconnect::IssuerUrl::new(self.issuer.clone()).expect("the issuer was parsed at start"),
            keys.oidc.clone(),
        )
        .set_allowed_algs(self.allowed_algs.iter().cloned())
        .set_issue_time_verifier_fn(move |iat| {
            let iat = iat.timestamp();
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            if (iat - now).abs() <= IAT_TOLERANCE_SECS {
                Ok(())
            } else {
                Err(format!("iat {iat} is more than {IAT_TOLERANCE_SECS} s from now"))
            }
        })
    }

    /// The userinfo endpoint's claims (OIDC Core §5.3), accepted only for the ID token's subject
    /// (§5.3.4). A failure is logged and costs only these extra claims, not the sign-in.
    async fn userinfo(&self, access_token: &AccessToken, id_claims: &OidcIdTokenClaims) -> Option<app::auth::Claims> {
        let request = match self.client.user_info(access_token.clone(), Some(id_claims.subject().clone())) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "AUTO_USERINFO: the provider has no userinfo endpoint");
                return None;
            }
        };
        match request.request_async::<SessionClaims, _, CoreGenderClaim>(&self.http).await {
            Ok(claims) => match serde_json::to_value(claims) {
                Ok(serde_json::Value::Object(map)) => Some(map.into_iter().collect()),
                _ => None,
            },
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "the userinfo request failed");
                None
            }
        }
    }
}

fn expires_in(response: &OidcTokenResponse) -> u64 {
    response.expires_in().map(|d| d.as_secs()).unwrap_or(DEFAULT_ACCESS_TOKEN_SECS)
}

/// OIDC Core §12.2: a refreshed ID token tells of the authentication its refresh token came
/// from: the same `sub`, and an `azp` exactly when the session's ID token had one. The verifier
/// has already held `iss` and `aud` to this provider and client.
///
/// `auth_time` should be the sign-in's, but a provider that renews its session when the user
/// signs in again elsewhere (`prompt=login` at another client) sends that later time: Keycloak
/// does, and Spring Security had to relax its equality check for it (spring-security#18839).
/// Ending the session for it would cost the user their sign-in for no gain, so what is refused
/// is an authentication before the sign-in's, or after the token was issued.
fn same_authentication(session: &AuthenticatedSession, refreshed: &OidcIdTokenClaims) -> Result<(), String> {
    if refreshed.subject().as_str() != session.subject {
        return Err("it names another subject".into());
    }
    let had_azp = session.id_token_claims.contains_key("azp");
    match (had_azp, refreshed.authorized_party().is_some()) {
        (true, false) => return Err("it has no azp, and the sign-in's had one".into()),
        (false, true) => return Err("it has an azp, and the sign-in's had none".into()),
        _ => {}
    }
    let issued_at = refreshed.issue_time().timestamp();
    match (session.auth_time, refreshed.auth_time().map(|time| time.timestamp())) {
        (Some(original), Some(time)) if time < original => {
            Err(format!("its auth_time {time} is before the sign-in's {original}"))
        }
        (_, Some(time)) if time > issued_at.saturating_add(IAT_TOLERANCE_SECS) => {
            Err(format!("its auth_time {time} is after it was issued ({issued_at})"))
        }
        _ => Ok(()),
    }
}

/// OIDC Core §3.1.3.7 step 5: an ID token's `azp`, when present, names this client.
fn authorized_party_is(azp: Option<&str>, client_id: &str) -> Result<(), String> {
    match azp {
        Some(azp) if azp != client_id => Err(format!("azp {azp} is not this client")),
        _ => Ok(()),
    }
}

fn refresh_expires_in(response: &OidcTokenResponse) -> Option<u64> {
    response.extra_fields().extra_fields().refresh_expires_in.filter(|secs| *secs > 0)
}

/// `name`, else `preferred_username`, else `sub`.
fn display_name(claims: &OidcIdTokenClaims) -> String {
    claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .or_else(|| claims.preferred_username().map(|u| u.to_string()))
        .unwrap_or_else(|| claims.subject().to_string())
}

fn claims_map(claims: &OidcIdTokenClaims) -> app::auth::IdTokenClaims {
    match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => Default::default(),
    }
}

/// Whether ID tokens may be signed with `alg`: exactly the algorithms that logout tokens and
/// access tokens are verified with ([`ASYMMETRIC_ALGS`]), so a provider whose ID tokens pass
/// cannot find its logout tokens refused.
fn is_asymmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    let name = serde_json::to_value(alg).ok();
    let alg = name.as_ref().and_then(|name| name.as_str()?.parse::<jsonwebtoken::Algorithm>().ok());
    alg.is_some_and(|alg| ASYMMETRIC_ALGS.contains(&alg))
}

/// An error and its sources on one line, for logs and start-up messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use openidconnect::{core::CoreJwsSigningAlgorithm, Nonce, NonceVerifier};

    use super::{authorized_party_is, claims_map, is_asymmetric, NonceCheck, OidcIdTokenClaims};

    /// The session keeps its ID token's claims as a map, and §12.2's `azp` rule reads from it
    /// whether the sign-in's had one: an absent claim must not be kept as a `null`.
    #[test]
    fn claims_kept_for_the_session_leave_out_what_the_id_token_left_out() {
        let without: OidcIdTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "https://op.example", "sub": "alice", "aud": "demo-app", "exp": 2000000000, "iat": 1700000000
        }))
        .unwrap();
        let kept = claims_map(&without);
        assert!(!kept.contains_key("azp") && !kept.contains_key("auth_time"), "{kept:?}");
        let with: OidcIdTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "https://op.example", "sub": "alice", "aud": "demo-app", "exp": 2000000000, "iat": 1700000000,
            "azp": "demo-app", "auth_time": 1699999000
        }))
        .unwrap();
        assert_eq!(claims_map(&with)["azp"], "demo-app");
    }

    #[test]
    fn id_tokens_take_the_algorithms_logout_and_access_tokens_take() {
        let offered = ["RS256", "PS384", "ES256", "EdDSA", "ES512", "HS256", "none"];
        let allowed: Vec<String> = offered
            .iter()
            .map(|name| serde_json::from_value::<CoreJwsSigningAlgorithm>(name.to_string().into()).unwrap())
            .filter(is_asymmetric)
            .map(|alg| serde_json::to_value(alg).unwrap().as_str().unwrap().to_owned())
            .collect();
        // ES512 (P-521) is asymmetric too, but jsonwebtoken cannot verify a logout token with it.
        assert_eq!(allowed, ["RS256", "PS384", "ES256", "EdDSA"]);
    }

    #[test]
    fn an_azp_must_name_this_client_when_present() {
        assert!(authorized_party_is(None, "demo-app").is_ok());
        assert!(authorized_party_is(Some("demo-app"), "demo-app").is_ok());
        assert_eq!(authorized_party_is(Some("other"), "demo-app").unwrap_err(), "azp other is not this client");
    }

    #[test]
    fn a_refreshed_id_token_may_leave_out_the_nonce_or_repeat_the_original_but_not_change_it() {
        let original = Nonce::new("n-0S6_WzA2Mj".into());
        let other = Nonce::new("a-fresh-one".into());
        let strict = NonceCheck::AfterRefresh { original: &original, ignore: false };
        assert!(strict.verify(None).is_ok());
        assert!(strict.verify(Some(&original)).is_ok());
        assert!(strict.verify(Some(&other)).is_err());
        // IGNORE_NONCE_AFTER_REFRESH, for providers that put a new nonce there.
        let lenient = NonceCheck::AfterRefresh { original: &original, ignore: true };
        assert!(lenient.verify(Some(&other)).is_ok());
    }

    #[test]
    fn a_sign_in_id_token_must_carry_the_nonce_sent() {
        let sent = Nonce::new("sent".into());
        assert!(NonceCheck::SignIn(&sent).verify(Some(&sent)).is_ok());
        assert!(NonceCheck::SignIn(&sent).verify(None).is_err());
        assert!(NonceCheck::SignIn(&sent).verify(Some(&Nonce::new("other".into()))).is_err());
    }
}
