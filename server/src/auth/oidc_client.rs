//! The relying party's view of the provider, through the `openidconnect` crate: discovery, the
//! authorization request (code flow, PKCE S256, state, nonce), and the code exchange with full ID
//! token validation (OIDC Core §3.1.3.7).

use std::time::Duration;

use openidconnect::{
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim,
        CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
        CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
    },
    reqwest, AdditionalClaims, AuthorizationCode, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::record::{AuthenticatedSession, IdTokenJwt, TokenSet};
use crate::{config::Config, error::AuthError};

/// Claims beyond OIDC Core's standard set that this app reads: the provider session id, which
/// back-channel logout names (Back-Channel Logout 1.0 §2.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}
impl AdditionalClaims for SessionClaims {}

type TokenFields = IdTokenFields<
    SessionClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type CodeTokenResponse = StandardTokenResponse<TokenFields, CoreTokenType>;
/// The client after discovery; its token endpoint is made required (`EndpointSet`) once checked.
type Client<HasTokenUrl = EndpointSet> = openidconnect::Client<
    SessionClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    CodeTokenResponse,
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

/// A discovered provider and this app's registration at it.
pub struct OidcClient {
    client: Client,
    issuer: String,
    http: reqwest::Client,
    scopes: Vec<Scope>,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
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
        let metadata = CoreProviderMetadata::discover_async(config.issuer.clone(), &http)
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
        let redirect_url = RedirectUrl::new(config.callback_url())
            .map_err(|e| DiscoveryError(format!("callback URL {}: {e}", config.callback_url())))?;
        let client = Client::<EndpointMaybeSet>::from_provider_metadata(
            metadata,
            config.client_id.clone(),
            config.client_secret.clone(),
        )
        .set_redirect_uri(redirect_url)
        .set_token_uri(token_url);
        let scopes = config.scopes.iter().filter(|s| *s != "openid").cloned().map(Scope::new).collect();
        Ok(Self { client, issuer: issuer.to_owned(), http, scopes, allowed_algs })
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

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Exchanges the code, validates the ID token, and returns the session to keep.
    pub async fn exchange_code(
        &self,
        code: String,
        pkce_verifier: PkceCodeVerifier,
        nonce: &Nonce,
        now: u64,
    ) -> Result<AuthenticatedSession, AuthError> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(pkce_verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(response) => AuthError::TokenRefused {
                    error: response.error().as_ref().to_owned(),
                    description: response.error_description().cloned().unwrap_or_default(),
                },
                other => AuthError::ProviderUnavailable(error_chain(&other)),
            })?;

        let id_token =
            response.id_token().ok_or(AuthError::InvalidIdToken("the token response has no ID token".into()))?;
        let verifier = self
            .client
            .id_token_verifier()
            .set_allowed_algs(self.allowed_algs.iter().cloned())
            .set_issue_time_verifier_fn(move |iat| {
                let iat = iat.timestamp();
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                if (iat - now).abs() <= IAT_TOLERANCE_SECS {
                    Ok(())
                } else {
                    Err(format!("iat {iat} is more than {IAT_TOLERANCE_SECS} s from now"))
                }
            });
        let claims = id_token.claims(&verifier, nonce).map_err(|e| AuthError::InvalidIdToken(error_chain(&e)))?;

        let display_name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .or_else(|| claims.preferred_username().map(|u| u.to_string()))
            .unwrap_or_else(|| claims.subject().to_string());
        let id_token_claims = match serde_json::to_value(claims) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
            _ => Default::default(),
        };
        let expires_in = response.expires_in().map(|d| d.as_secs()).unwrap_or(0);
        Ok(AuthenticatedSession {
            subject: claims.subject().to_string(),
            display_name,
            sid: claims.additional_claims().sid.clone(),
            id_token_claims,
            tokens: TokenSet {
                access_token: response.access_token().clone(),
                access_token_expires_at: now + expires_in,
                refresh_token: response.refresh_token().cloned(),
                id_token: IdTokenJwt::new(id_token.to_string()),
            },
        })
    }
}

fn is_asymmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm::*;
    matches!(
        alg,
        RsaSsaPkcs1V15Sha256
            | RsaSsaPkcs1V15Sha384
            | RsaSsaPkcs1V15Sha512
            | RsaSsaPssSha256
            | RsaSsaPssSha384
            | RsaSsaPssSha512
            | EcdsaP256Sha256
            | EcdsaP384Sha384
            | EcdsaP521Sha512
            | EdDsa
    )
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
