//! Fuzz the catalog's record decoder: whatever bytes come back from
//! `catalog.redb`, each record type decodes or is `Corrupt`, never a panic
//! or an allocation past the codec's 1 MiB limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::catalog::codec::decode;
use storage::catalog::{
    AgentRecord, AlertRecord, DeliveryRecord, FiringRecord, RecipientRecord, RuleRecord,
    ServerSettingsRecord, SessionRecord, UserRecord,
};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<UserRecord>("user", data);
    let _ = decode::<SessionRecord>("session", data);
    let _ = decode::<AgentRecord>("agent", data);
    let _ = decode::<RuleRecord>("rule", data);
    let _ = decode::<FiringRecord>("rule state", data);
    let _ = decode::<AlertRecord>("alert", data);
    let _ = decode::<DeliveryRecord>("delivery", data);
    let _ = decode::<RecipientRecord>("recipient", data);
    let _ = decode::<ServerSettingsRecord>("settings", data);
});
