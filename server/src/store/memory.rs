//! The store in this process's memory: nothing survives a restart. For tests and throwaway runs
//! (`SESSION_STORE=memory`).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<HashMap<String, (Vec<u8>, u64)>>,
    sets: Mutex<HashMap<String, HashMap<String, u64>>>,
}

impl MemoryKv {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Vec<u8>, u64)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str, now_ms: u64) -> Option<Vec<u8>> {
        self.lock().get(key).filter(|(_, expires)| now_ms < *expires).map(|(value, _)| value.clone())
    }

    pub fn set(&self, key: &str, value: Vec<u8>, expires_at_ms: u64) {
        self.lock().insert(key.to_owned(), (value, expires_at_ms));
    }

    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> bool {
        let mut entries = self.lock();
        let current = entries.get(key).filter(|(_, expires)| now_ms < *expires).map(|(value, _)| value.as_slice());
        if current != expected {
            return false;
        }
        entries.insert(key.to_owned(), (value, expires_at_ms));
        true
    }

    pub fn compare_and_delete(&self, key: &str, expected: &[u8]) -> bool {
        let mut entries = self.lock();
        if entries.get(key).is_some_and(|(value, _)| value == expected) {
            entries.remove(key);
            return true;
        }
        false
    }

    pub fn purge_expired(&self, now_ms: u64) {
        self.lock().retain(|_, (_, expires)| now_ms < *expires);
        let mut sets = self.sets();
        sets.values_mut().for_each(|members| members.retain(|_, expires| now_ms < *expires));
        sets.retain(|_, members| !members.is_empty());
    }

    fn sets(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, u64>>> {
        self.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_add(&self, key: &str, member: &str, expires_at_ms: u64) {
        self.sets().entry(key.to_owned()).or_default().insert(member.to_owned(), expires_at_ms);
    }

    pub fn set_members(&self, key: &str, now_ms: u64) -> Vec<String> {
        let sets = self.sets();
        let members = sets.get(key).into_iter().flatten();
        members.filter(|(_, expires)| now_ms < **expires).map(|(member, _)| member.clone()).collect()
    }

    pub fn set_remove(&self, key: &str, member: &str) {
        if let Some(members) = self.sets().get_mut(key) {
            members.remove(member);
        }
    }
}
