//! Rules that target a tag (`tag:vps`): they watch every agent of their
//! owner carrying the tag, now and later, with a state per agent.
//!
//! Which agents a tag rule watches is recomputed ([`Inner::retarget`]) when
//! the server starts, when such a rule is created or changed, and when an
//! agent's tags change or the agent is deleted. An agent that gains the tag
//! is evaluated at once; one that loses it resolves what was firing on it
//! (a "resolved" event and notification, like a breach that ended).

use std::collections::{BTreeSet, HashMap};
use std::sync::PoisonError;

use storage::catalog::{AgentRecord, CatalogError, RuleRecord};

use super::{Alerting, EvalState, Inner, Pending, split_tag_key};

/// (rule, agent) pairs a tag rule started watching.
type Joined = Vec<(RuleRecord, u64)>;

impl Alerting {
    /// Stores a new rule watching every agent of `rule.owner_id` tagged
    /// `tag` and evaluates it at once. Blocking.
    pub fn create_tag_rule(
        &self,
        rule: &RuleRecord,
        tag: &str,
    ) -> Result<RuleRecord, CatalogError> {
        let mut state = self.inner.lock();
        let rule = self.inner.catalog.create_tag_rule(rule, tag)?;
        state.tag_rules.insert(rule.id, tag.to_string());
        state.insert_rule(rule.clone());
        let now = self.inner.clock.now_ms();
        let mut pending = self.inner.retarget_logged(&mut state, now);
        pending.extend(self.inner.evaluate_rule(&mut state, &rule, now));
        self.inner.publish(&mut state);
        drop(state);
        self.inner.send(pending);
        Ok(rule)
    }

    /// The tags of an agent of `owner_id` changed: its tag rules now watch
    /// the agents carrying their tag. Blocking.
    pub fn agent_tags_changed(&self, owner_id: u64) {
        let mut state = self.inner.lock();
        if !state
            .tag_rules
            .keys()
            .any(|id| state.rules.get(id).is_some_and(|r| r.owner_id == owner_id))
        {
            return;
        }
        let now = self.inner.clock.now_ms();
        let pending = self.inner.retarget_logged(&mut state, now);
        self.inner.publish(&mut state);
        drop(state);
        self.inner.send(pending);
    }

    /// The tag rule `id` watches, if it targets one. Never waits for the
    /// evaluator (safe on an async worker).
    pub fn rule_tag(&self, id: u64) -> Option<String> {
        self.inner
            .rule_tags
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

impl Inner {
    /// Copies the tag of each rule for [`Alerting::rule_tag`].
    pub(super) fn publish_tags(&self, state: &EvalState) {
        *self
            .rule_tags
            .write()
            .unwrap_or_else(PoisonError::into_inner) = state.tag_rules.clone();
    }

    /// [`Inner::retarget`], with errors logged (the next change retries).
    pub(super) fn retarget_logged(&self, state: &mut EvalState, now: i64) -> Vec<Pending> {
        match self.retarget(state, now) {
            Ok((mut pending, joined)) => {
                for (rule, agent_id) in joined {
                    pending.extend(self.evaluate_target(state, &rule, agent_id, now));
                }
                pending
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot find the agents of tag alert rules");
                Vec::new()
            }
        }
    }

    /// Recomputes the agents each tag rule watches from the catalog.
    /// Resolves the states of agents that no longer carry the tag; returns
    /// those notifications and the (rule, agent) pairs that joined, for the
    /// caller to evaluate.
    pub(super) fn retarget(
        &self,
        state: &mut EvalState,
        now: i64,
    ) -> Result<(Vec<Pending>, Joined), CatalogError> {
        let mut agents_of: HashMap<u64, Vec<AgentRecord>> = HashMap::new();
        let mut next: HashMap<u64, BTreeSet<u64>> = HashMap::new();
        for (&rule_id, tag) in &state.tag_rules {
            let Some(rule) = state.rules.get(&rule_id) else {
                continue;
            };
            let agents = match agents_of.entry(rule.owner_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.catalog.agents_of(rule.owner_id)?)
                }
            };
            let tagged = agents
                .iter()
                .filter(|a| a.tags.iter().any(|t| t == tag))
                .map(|a| a.id)
                .collect();
            next.insert(rule_id, tagged);
        }
        let mut joined = Vec::new();
        for (rule_id, agents) in &next {
            let before = state.tag_agents.get(rule_id);
            for agent in agents {
                if before.is_none_or(|b| !b.contains(agent))
                    && let Some(rule) = state.rules.get(rule_id)
                {
                    joined.push((rule.clone(), *agent));
                }
            }
        }
        let left: Vec<(u64, String, u64)> = state
            .firing
            .keys()
            .filter_map(|(rule_id, key)| {
                let agents = next.get(rule_id)?;
                let (agent, _) = split_tag_key(key)?;
                (!agents.contains(&agent)).then(|| (*rule_id, key.clone(), agent))
            })
            .collect();
        state.tag_agents = next;
        state.rewatch();
        self.publish_tags(state);
        let mut pending = Vec::new();
        for (rule_id, key, agent_id) in left {
            let (Some(rule), Some(firing)) = (
                state.rules.get(&rule_id).cloned(),
                state.firing.get(&(rule_id, key.clone())).copied(),
            ) else {
                continue;
            };
            let label = split_tag_key(&key).and_then(|(_, l)| l.map(str::to_string));
            let name = self
                .catalog
                .agent(agent_id)?
                .map_or_else(|| format!("agent {agent_id}"), |a| a.name);
            pending.extend(self.step(
                state,
                &rule,
                agent_id,
                label.as_deref(),
                false,
                false,
                firing.value,
                rule.threshold.unwrap_or(0.0),
                now,
                &name,
            )?);
        }
        Ok((pending, joined))
    }

    /// Agent `agent_id` is being deleted: the tag rules' states on it go
    /// without an event, and they stop watching it.
    pub(super) fn forget_agent(
        &self,
        state: &mut EvalState,
        agent_id: u64,
    ) -> Result<(), CatalogError> {
        let keys: Vec<(u64, String)> = state
            .firing
            .keys()
            .filter(|(rule_id, key)| {
                state.tag_rules.contains_key(rule_id)
                    && split_tag_key(key).is_some_and(|(a, _)| a == agent_id)
            })
            .cloned()
            .collect();
        for (rule_id, key) in keys {
            self.catalog
                .record_transition(rule_id, &key, None, None, self.keep_events)?;
            state.firing.remove(&(rule_id, key));
            state.firing_changed = true;
        }
        for agents in state.tag_agents.values_mut() {
            agents.remove(&agent_id);
        }
        state.rewatch();
        Ok(())
    }
}
