//! The per-source circuit breaker: after a run of consecutive failures it stops calls to the
//! source for a cool-down, then lets exactly one trial call through (half-open); that call's
//! success closes it again, its failure re-opens it.
//!
//! Owns the state machine and the permit a call holds while it runs. Does not decide what counts
//! as a failure (the connector classifies each call as a [`Health`]) and reads no clock: every
//! transition takes `now` from the caller, so the machine is tested without waiting.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What one finished call says about the source's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// It answered usably, or refused in a way that shows it is up (4xx).
    Up,
    /// Timeout, connection error, 5xx or an unusable answer.
    Down,
    /// Nothing was learnt (the call was cancelled before it finished).
    Unknown,
}

/// The breaker's state as reported to callers (e.g. a health page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is in flight; other calls are refused until it finishes.
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    failures: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

/// The right to make one call. Dropping it without [`Permit::record`] (the call's future was
/// cancelled) records [`Health::Unknown`], so a cancelled trial call frees the half-open slot
/// instead of leaving the breaker refusing calls forever.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    trial: bool,
    recorded: bool,
}

impl Breaker {
    pub(crate) fn new(failures: u32, cool_down: Duration) -> Self {
        Self {
            // Zero would open the breaker before any call; one failure is the least that can count.
            failures: failures.max(1),
            cool_down,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value updated in one assignment, so a panic elsewhere cannot leave
        // it half-written; carrying on is safe.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit to call the source, or `None` while the breaker is open (or its one trial call
    /// is in flight).
    pub(crate) fn admit(&self, now: Instant) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => return None,
        };
        Some(Permit {
            breaker: self,
            trial,
            recorded: false,
        })
    }

    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            // An expired cool-down is reported as half-open: the next call will be the trial.
            State::Open { until } if now >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    fn record(&self, trial: bool, health: Health, now: Instant) {
        let mut state = self.lock();
        let open = State::Open {
            until: now + self.cool_down,
        };
        if trial {
            *state = match health {
                Health::Up => State::Closed { failures: 0 },
                Health::Down => open,
                // Let the next call be the trial straight away.
                Health::Unknown => State::Open { until: now },
            };
            return;
        }
        // A call admitted while closed that finishes after the breaker opened (others failed
        // meanwhile) says nothing the trial will not say better, so it is ignored.
        if let State::Closed { failures } = *state {
            *state = match health {
                Health::Up => State::Closed { failures: 0 },
                Health::Down if failures + 1 >= self.failures => open,
                Health::Down => State::Closed {
                    failures: failures + 1,
                },
                Health::Unknown => State::Closed { failures },
            };
        }
    }
}

impl Permit<'_> {
    pub(crate) fn record(mut self, health: Health, now: Instant) {
        self.recorded = true;
        self.breaker.record(self.trial, health, now);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker
                .record(self.trial, Health::Unknown, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(30);

    fn fail(breaker: &Breaker, now: Instant) {
        breaker.admit(now).unwrap().record(Health::Down, now);
    }

    #[test]
    fn opens_after_the_configured_run_of_failures() {
        let t0 = Instant::now();
        let breaker = Breaker::new(3, COOL);
        fail(&breaker, t0);
        fail(&breaker, t0);
        assert_eq!(breaker.state(t0), BreakerState::Closed);
        fail(&breaker, t0);
        assert_eq!(breaker.state(t0), BreakerState::Open);
        assert!(breaker.admit(t0).is_none());
        assert!(breaker.admit(t0 + COOL / 2).is_none());
    }

    #[test]
    fn a_success_resets_the_run() {
        let t0 = Instant::now();
        let breaker = Breaker::new(2, COOL);
        fail(&breaker, t0);
        breaker.admit(t0).unwrap().record(Health::Up, t0);
        fail(&breaker, t0);
        assert_eq!(breaker.state(t0), BreakerState::Closed);
    }

    #[test]
    fn after_the_cool_down_one_trial_goes_through_and_its_success_closes() {
        let t0 = Instant::now();
        let breaker = Breaker::new(1, COOL);
        fail(&breaker, t0);
        let later = t0 + COOL;
        let trial = breaker.admit(later).expect("trial admitted");
        assert!(breaker.admit(later).is_none(), "only one trial at a time");
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        trial.record(Health::Up, later);
        assert_eq!(breaker.state(later), BreakerState::Closed);
        assert!(breaker.admit(later).is_some());
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cool_down() {
        let t0 = Instant::now();
        let breaker = Breaker::new(1, COOL);
        fail(&breaker, t0);
        let later = t0 + COOL;
        fail(&breaker, later);
        assert!(breaker.admit(later + COOL / 2).is_none());
        assert!(breaker.admit(later + COOL).is_some());
    }

    #[test]
    fn a_cancelled_trial_frees_the_slot() {
        let t0 = Instant::now();
        let breaker = Breaker::new(1, COOL);
        fail(&breaker, t0);
        drop(breaker.admit(t0 + COOL).expect("trial"));
        assert!(breaker.admit(t0 + COOL).is_some());
    }

    #[test]
    fn late_results_of_calls_admitted_before_opening_are_ignored() {
        let t0 = Instant::now();
        let breaker = Breaker::new(1, COOL);
        let early = breaker.admit(t0).unwrap();
        fail(&breaker, t0);
        early.record(Health::Up, t0);
        assert_eq!(breaker.state(t0), BreakerState::Open);
    }
}
