//! The service layer: every FHIR use case Concord offers, and the only path from a transport to
//! data (<https://hl7.org/fhir/R4/http.html>).
//!
//! Owns: the rules of each interaction (ids, versions, `meta`, validation, conditional logic,
//! transaction processing, paging links, `_summary` and `_elements`), the clock and id sources,
//! and assembling response Bundles. Every method takes the [`RequestContext`] first.
//!
//! Does not: speak HTTP (the REST crate maps requests and the error vocabulary), store anything
//! itself (the [`ResourceStore`] does), or decide access and consent itself: [`access`] asks the pure
//! `concord-access` crate, and every use case that returns or writes a person's data calls it, so
//! no transport can skip it.

pub mod access;
pub mod announce;
pub mod audit;
pub mod audit_view;
pub mod bundle;
pub mod capability;
mod decision_view;
pub mod everything;
pub mod federate;
pub mod feed;
pub mod history;
pub mod identity;
pub mod read;
pub mod search;
pub mod transaction;
pub mod write;

use std::sync::Arc;

use concord_fhir::RequestContext;
use concord_store::ResourceStore;

/// The source of "now", so tests can fix time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Settings of the service layer.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Page size when a search names none.
    pub default_count: u32,
    /// Largest page size a client may ask for.
    pub max_count: u32,
    /// Largest number of entries in one batch or transaction Bundle.
    pub max_bundle_entries: usize,
    /// NHS number policy and matching thresholds.
    pub identity: identity::IdentityConfig,
    /// How inbound HL7 v2 is mapped.
    pub feed: feed::FeedConfig,
    /// Who may see what: this node's organisation, the consent and break-glass policy.
    pub access: access::AccessConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            default_count: 50,
            max_count: 1000,
            max_bundle_entries: 20_000,
            identity: identity::IdentityConfig::default(),
            feed: feed::FeedConfig::default(),
            access: access::AccessConfig::default(),
        }
    }
}

/// The service layer's entry point. Cloning it (once or more per request) copies one reference
/// count: a clone of each part was several atomic counts shared by every request thread.
#[derive(Clone)]
pub struct Hub {
    parts: Arc<HubParts>,
}

impl std::ops::Deref for Hub {
    type Target = HubParts;

    fn deref(&self) -> &HubParts {
        &self.parts
    }
}

/// What a [`Hub`] holds; its fields are the hub's own.
#[derive(Clone)]
pub struct HubParts {
    pub(crate) store: Arc<dyn ResourceStore>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Shared, not copied: the hub is cloned for every request, and the config holds the
    /// sensitive-code lists and the source registry.
    pub(crate) config: Arc<HubConfig>,
    pub(crate) identity: Arc<identity::Identity>,
    /// The log of inbound HL7 v2 messages, on nodes that receive feeds.
    pub(crate) messages: Option<Arc<dyn concord_store::MessageLog>>,
    /// The sources this node federates, when it is a hub.
    pub(crate) federation: Option<Arc<federate::Federation>>,
    /// One person's inbound HL7 v2 messages are logged and applied one at a time.
    pub(crate) feed_turns: Arc<feed::FeedTurns>,
    /// Break-glass grants in force.
    pub(crate) grants: Arc<access::Grants>,
    /// What access decisions read about people, until the next write.
    pub(crate) facts_cache: Arc<access::FactsCache>,
    /// The audit trail every request is recorded in, on nodes that serve people.
    pub(crate) audit: Option<audit::AuditTrail>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("config", &self.config).finish()
    }
}

impl From<HubParts> for Hub {
    fn from(parts: HubParts) -> Hub {
        Hub {
            parts: Arc::new(parts),
        }
    }
}

impl Hub {
    /// Builds the service layer over a store and loads the master patient index from it (every
    /// golden person and current Patient), linking any Patient that an interrupted run left
    /// unlinked.
    pub fn new(
        store: Arc<dyn ResourceStore>,
        clock: Arc<dyn Clock>,
        config: HubConfig,
    ) -> Result<Hub, concord_fhir::Error> {
        let hub = Hub::from(HubParts {
            store,
            clock,
            identity: Arc::new(identity::Identity::new(&config.identity)),
            messages: None,
            federation: None,
            feed_turns: Arc::default(),
            grants: Arc::default(),
            facts_cache: Arc::default(),
            audit: None,
            config: Arc::new(config),
        });
        hub.load_identity(&RequestContext::system("concord-hub", "start"))?;
        Ok(hub)
    }

    /// Gives the hub a message log, so it can receive HL7 v2 feeds ([`Hub::receive_v2`]).
    pub fn with_message_log(mut self, log: Arc<dyn concord_store::MessageLog>) -> Hub {
        self.parts_mut().messages = Some(log);
        self
    }

    /// The parts, to change while building (a hub already cloned is copied first).
    pub(crate) fn parts_mut(&mut self) -> &mut HubParts {
        Arc::make_mut(&mut self.parts)
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Gives the hub its audit trail.
    pub fn with_audit(mut self, trail: audit::AuditTrail) -> Hub {
        self.parts_mut().audit = Some(trail);
        self
    }

    /// The audit trail, when this node keeps one.
    pub fn audit(&self) -> Option<&audit::AuditTrail> {
        self.audit.as_ref()
    }

    /// Now, by the hub's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A fresh logical id for a created resource (and for other things the hub names).
    ///
    /// A time-ordered UUID (version 7, RFC 9562), not a random one: a new resource's rows in the
    /// store's id index, and the rows of the references made to it soon after (an Encounter's
    /// subject, an Observation's encounter), then go at the end of their index ranges instead of
    /// on a random page each, which made the benchmark's HTTP import about 13% faster
    /// (docs/performance.md). The id shows when it was made, to the millisecond, which the first
    /// version's `meta.lastUpdated` shows anyway. Taken from the system clock rather than
    /// [`Clock`]: it is a name, not a time anyone reads back.
    pub(crate) fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Checks that the store answers, for readiness probes.
    pub fn ready(&self, ctx: &RequestContext) -> bool {
        self.store.read(ctx, "Patient", "readiness-probe").is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Hub;

    #[test]
    fn new_ids_are_unique_and_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..1000).map(|_| Hub::new_id()).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "each id sorts after the one before"
        );
        for id in &ids {
            assert!(concord_fhir::primitive::is_id(id), "{id} is a FHIR id");
        }
    }
}
