//! Catalog unit tests on a real redb file in a temporary directory.

use super::*;

fn open() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open_in(dir.path()).unwrap();
    (dir, catalog)
}

const T0: i64 = 1_767_225_600_000;

#[test]
fn first_user_is_admin_and_registration_then_closes() {
    let (_dir, c) = open();
    let alice = c.create_user("alice", "h", false, T0).unwrap();
    assert!(alice.is_admin);
    assert!(matches!(
        c.create_user("bob", "h", false, T0),
        Err(CatalogError::RegistrationClosed)
    ));
    let bob = c.create_user("bob", "h", true, T0).unwrap();
    assert!(!bob.is_admin);
    assert!(matches!(
        c.create_user("bob", "h", true, T0),
        Err(CatalogError::UsernameTaken { .. })
    ));
    c.set_server_settings(&ServerSettingsRecord {
        open_registration: true,
    })
    .unwrap();
    c.create_user("carol", "h", false, T0).unwrap();
    assert_eq!(c.user_count().unwrap(), 3);
    assert_eq!(c.user_by_name("bob").unwrap().unwrap().id, bob.id);
}

#[test]
fn refresh_rotation_and_reuse_revokes_the_family() {
    let (_dir, c) = open();
    let s = c.create_session(1, &[1; 32], 77, "ua", T0, 1000).unwrap();
    assert!(c.is_session_active(s.id, 1));
    assert!(!c.is_session_active(s.id, 2));
    assert!(c.is_session_key_valid(s.id, 1, 77));
    assert!(!c.is_session_key_valid(s.id, 1, 78), "another key");
    assert!(!c.is_session_key_valid(s.id, 2, 77), "another user");
    assert!(matches!(
        c.rotate_refresh(&[1; 32], &[2; 32], 99, T0 + 1, 1000)
            .unwrap(),
        RefreshOutcome::Rotated(_, 77)
    ));
    assert_eq!(
        c.rotate_refresh(&[1; 32], &[3; 32], 99, T0 + 2, 1000)
            .unwrap(),
        RefreshOutcome::Reused {
            session_id: s.id,
            user_id: 1
        }
    );
    assert!(!c.is_session_active(s.id, 1));
    assert!(!c.is_session_key_valid(s.id, 1, 77));
    assert_eq!(
        c.rotate_refresh(&[2; 32], &[4; 32], 99, T0 + 3, 1000)
            .unwrap(),
        RefreshOutcome::Invalid
    );
}

#[test]
fn a_family_from_before_keys_is_refused_until_its_next_refresh_keys_it() {
    let (dir, c) = open();
    let s = c.create_session(1, &[1; 32], 77, "ua", T0, 1000).unwrap();
    // What a data directory of format 2 holds: the family, no key.
    let txn = c.write().unwrap();
    txn.open_table(SESSION_KEYS).unwrap().remove(s.id).unwrap();
    txn.commit().unwrap();
    drop(c);
    let c = Catalog::open_in(dir.path()).unwrap();
    assert!(c.is_session_active(s.id, 1), "still live");
    assert!(!c.is_session_key_valid(s.id, 1, 77));
    assert!(!c.is_session_key_valid(s.id, 1, 0));
    assert!(matches!(
        c.rotate_refresh(&[1; 32], &[2; 32], 99, T0 + 1, 1000)
            .unwrap(),
        RefreshOutcome::Rotated(_, 99)
    ));
    assert!(c.is_session_key_valid(s.id, 1, 99));
    drop(c);
    let c = Catalog::open_in(dir.path()).unwrap();
    assert!(c.is_session_key_valid(s.id, 1, 99), "the key is stored");
}

#[test]
fn expired_family_cannot_refresh_and_is_purged() {
    let (_dir, c) = open();
    let s = c.create_session(1, &[1; 32], 77, "ua", T0, 1000).unwrap();
    assert_eq!(
        c.rotate_refresh(&[1; 32], &[2; 32], 99, T0 + 1000, 1000)
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(!c.is_session_active(s.id, 1));
    c.create_session(1, &[5; 32], 78, "ua", T0, 1000).unwrap();
    assert_eq!(c.purge_sessions(T0 + 5000, 1000).unwrap(), 3);
}

#[test]
fn pending_agent_token_activates_or_expires() {
    let (_dir, c) = open();
    let a = c.create_agent(1, "nas", &[9; 32], T0).unwrap();
    assert!(matches!(
        c.authenticate_agent(&[8; 32], T0),
        Err(AgentAuthError::Unknown)
    ));
    assert!(matches!(
        c.authenticate_agent(&[9; 32], T0 + PENDING_TOKEN_TTL_MS),
        Err(AgentAuthError::Expired)
    ));
    let b = c.create_agent(1, "pi", &[7; 32], T0).unwrap();
    let auth = c
        .authenticate_agent(&[7; 32], T0 + PENDING_TOKEN_TTL_MS - 1)
        .unwrap();
    assert_eq!(auth.agent_id, b.id);
    assert_eq!(
        c.agent(b.id)
            .unwrap()
            .unwrap()
            .token_status(T0 + 10 * PENDING_TOKEN_TTL_MS),
        TokenStatus::Active
    );
    // Regenerating revokes the old token at once, cached or not.
    assert!(c.cached_agent_auth(&[7; 32]).is_some());
    c.regenerate_agent_token(1, b.id, &[5; 32], T0 + 1_000_000)
        .unwrap()
        .unwrap();
    assert!(c.cached_agent_auth(&[7; 32]).is_none());
    assert!(matches!(
        c.authenticate_agent(&[7; 32], T0 + 1_000_000),
        Err(AgentAuthError::Unknown)
    ));
    c.regenerate_agent_token(1, a.id, &[6; 32], T0 + 1_000_000)
        .unwrap()
        .unwrap();
    assert!(matches!(
        c.authenticate_agent(&[9; 32], T0 + 1_000_000),
        Err(AgentAuthError::Unknown)
    ));
    c.authenticate_agent(&[6; 32], T0 + 1_000_001).unwrap();
    // Someone else's agent is invisible to writes.
    assert!(c.rename_agent(2, a.id, "x").unwrap().is_none());
    assert!(!c.delete_agent(2, a.id).unwrap());
    // Cached after a successful check; deletion still refuses it at once.
    c.authenticate_agent(&[6; 32], T0 + 1_000_001).unwrap();
    assert_eq!(
        c.cached_agent_auth(&[6; 32]).map(|a| a.agent_id),
        Some(a.id)
    );
    assert!(c.delete_agent(1, a.id).unwrap());
    assert_eq!(c.cached_agent_auth(&[6; 32]), None);
    assert!(matches!(
        c.authenticate_agent(&[6; 32], T0 + 1_000_002),
        Err(AgentAuthError::Unknown)
    ));
}

#[test]
fn last_seen_is_kept_in_memory_and_flushed_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let c = Catalog::open_in(dir.path()).unwrap();
        let a = c.create_agent(1, "nas", &[9; 32], T0).unwrap();
        let gone = c.create_agent(1, "gone", &[8; 32], T0).unwrap();
        let host = crate::model::HostFacts {
            hostname: "nas".into(),
            ..Default::default()
        };
        c.record_report(a.id, T0 + 1, Some(5000), Some(host))
            .unwrap();
        c.record_report(a.id, T0 + 2, None, None).unwrap();
        c.record_report(gone.id, T0 + 2, None, None).unwrap();
        let seen = c.agent(a.id).unwrap().unwrap();
        assert_eq!(seen.last_seen_ms, Some(T0 + 2), "merged from memory");
        assert_eq!(seen.host.unwrap().hostname, "nas");
        assert!(c.delete_agent(1, gone.id).unwrap());
        c.record_report(gone.id, T0 + 3, None, None).unwrap(); // a late batch
        assert_eq!(c.flush_live().unwrap(), 1, "the deleted agent is skipped");
        assert_eq!(c.flush_live().unwrap(), 0, "nothing new");
        assert!(c.agent(gone.id).unwrap().is_none());
        c.record_report(a.id, T0 + 2, None, None).unwrap();
        a.id
    };
    let c = Catalog::open_in(dir.path()).unwrap();
    let a = c.agent(id).unwrap().unwrap();
    assert_eq!(a.last_seen_ms, Some(T0 + 2));
    assert_eq!(a.interval_ms, Some(5000));
    assert_eq!(a.host.unwrap().hostname, "nas");
}

#[test]
fn jwt_secret_is_generated_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Catalog::open_in(dir.path()).unwrap();
        assert_eq!(c.jwt_secret_or_insert(&[1; 32]).unwrap(), vec![1; 32]);
    }
    let c = Catalog::open_in(dir.path()).unwrap();
    assert_eq!(c.jwt_secret_or_insert(&[2; 32]).unwrap(), vec![1; 32]);
}

#[test]
fn corrupt_record_on_disk_is_an_error_not_a_panic() {
    let (_dir, c) = open();
    let a = c.create_agent(1, "nas", &[9; 32], T0).unwrap();
    {
        let txn = c.write().unwrap();
        {
            let mut t = txn.open_table(AGENTS).unwrap();
            t.insert(a.id, [42u8, 1, 2].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(c.agent(a.id), Err(CatalogError::Corrupt { .. })));
    assert!(matches!(
        c.authenticate_agent(&[9; 32], T0),
        Err(AgentAuthError::Catalog(CatalogError::Corrupt { .. }))
    ));
}

/// Golden bytes of each version-1 record. If one of these fails, the on-disk
/// layout changed: existing catalogs would read as corrupt. Add a version 2
/// with an upgrade path instead of editing these.
#[test]
fn version_1_record_layouts_are_frozen() {
    let user = UserRecordV1 {
        id: 1,
        username: "al".into(),
        password_hash: "h".into(),
        is_admin: true,
        created_ms: 2,
    };
    let session = SessionRecord {
        id: 3,
        user_id: 1,
        created_ms: 4,
        last_used_ms: 5,
        expires_ms: 6,
        user_agent: "u".into(),
        current_hash: [7; 32],
    };
    let agent = AgentRecordV1 {
        id: 8,
        owner_id: 1,
        name: "n".into(),
        created_ms: 9,
        token_hash: [10; 32],
        token_created_ms: 11,
        activated_ms: Some(12),
        last_seen_ms: None,
        interval_ms: Some(5000),
        host: Some(HostRecord {
            hostname: "h".into(),
            os: None,
            kernel: None,
            arch: None,
            cpu_model: None,
            cores: Some(4),
        }),
    };
    let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(codec::encode("user", &user).unwrap()),
        "010102616c016801 04".replace(' ', "")
    );
    let session_hex = hex(codec::encode("session", &session).unwrap());
    assert_eq!(
        session_hex,
        format!("0103010{}0a0c01 75{}", "8", "07".repeat(32)).replace(' ', "")
    );
    let agent_hex = hex(codec::encode("agent", &agent).unwrap());
    assert_eq!(
        agent_hex,
        format!(
            "010801016e12{}16011800 01fb102701016800000000 0104",
            "0a".repeat(32)
        )
        .replace(' ', "")
    );
    // And they decode back, as the version-2 records they upgrade to.
    assert_eq!(
        codec::decode::<AgentRecordV1>("agent", &codec::encode("agent", &agent).unwrap()).unwrap(),
        agent
    );
    let upgraded = agents::decode_agent("agent", &codec::encode("agent", &agent).unwrap()).unwrap();
    assert_eq!(upgraded.tags, Vec::<String>::new());
    assert_eq!((upgraded.id, upgraded.name.as_str()), (8, "n"));
    let upgraded = users::decode_user("user", &codec::encode("user", &user).unwrap()).unwrap();
    assert_eq!(
        (
            upgraded.disabled,
            upgraded.must_change_password,
            upgraded.last_login_ms
        ),
        (false, false, None)
    );
    assert_eq!(
        (
            upgraded.username.as_str(),
            upgraded.is_admin,
            upgraded.created_ms
        ),
        ("al", true, 2)
    );
}

/// Version-2 user and agent records: written with byte 2, read back whole.
#[test]
fn version_2_user_and_agent_records_round_trip() {
    let user = UserRecord {
        id: 1,
        username: "al".into(),
        password_hash: "h".into(),
        is_admin: false,
        created_ms: 2,
        disabled: true,
        must_change_password: true,
        last_login_ms: Some(3),
    };
    let bytes = users::encode_user(&user).unwrap();
    assert_eq!(bytes[0], codec::VERSION_2);
    assert_eq!(users::decode_user("user", &bytes).unwrap(), user);
    let (_dir, c) = open();
    let a = c.create_agent(1, "nas", &[1; 32], T0).unwrap();
    let tagged = c
        .set_agent_tags(1, a.id, vec!["home".into(), "vps".into()])
        .unwrap()
        .unwrap();
    assert_eq!(c.agent(a.id).unwrap().unwrap().tags, tagged.tags);
    assert!(
        c.set_agent_tags(2, a.id, vec![]).unwrap().is_none(),
        "not theirs"
    );
    let mut bad = agents::encode_agent(&tagged).unwrap();
    bad[0] = 3;
    assert!(matches!(
        agents::decode_agent("agent", &bad),
        Err(CatalogError::Corrupt { .. })
    ));
}

#[test]
fn the_last_enabled_admin_cannot_be_demoted_disabled_or_deleted() {
    let (_dir, c) = open();
    let alice = c.create_user("alice", "h", false, T0).unwrap();
    let bob = c.create_user_as_admin("bob", "h", true, T0).unwrap();
    assert!(!bob.is_admin && bob.must_change_password);
    assert!(c.must_change_password(bob.id));
    assert!(matches!(
        c.set_user_admin(alice.id, false),
        Err(CatalogError::LastAdmin)
    ));
    assert!(matches!(
        c.set_user_disabled(alice.id, true),
        Err(CatalogError::LastAdmin)
    ));
    assert!(matches!(
        c.delete_user(alice.id),
        Err(CatalogError::LastAdmin)
    ));
    assert!(
        c.user(alice.id).unwrap().unwrap().is_admin,
        "nothing changed"
    );
    c.set_user_admin(bob.id, true).unwrap().unwrap();
    c.set_user_admin(alice.id, false).unwrap().unwrap();
    assert!(matches!(
        c.set_user_admin(bob.id, false),
        Err(CatalogError::LastAdmin)
    ));
}

#[test]
fn disabling_ends_sessions_and_deleting_removes_everything_of_the_user() {
    let (_dir, c) = open();
    let _alice = c.create_user("alice", "h", false, T0).unwrap();
    let bob = c.create_user_as_admin("bob", "h", false, T0).unwrap();
    let s = c
        .create_session(bob.id, &[5; 32], 9, "ua", T0, 1000)
        .unwrap();
    assert!(c.is_session_key_valid(s.id, bob.id, 9));
    let (_, ended) = c.set_user_disabled(bob.id, true).unwrap().unwrap();
    assert_eq!(ended, vec![s.id]);
    assert!(!c.is_session_key_valid(s.id, bob.id, 9), "ended at once");
    assert!(c.user(bob.id).unwrap().unwrap().disabled);
    c.set_user_disabled(bob.id, false).unwrap().unwrap();

    let a = c.create_agent(bob.id, "nas", &[6; 32], T0).unwrap();
    c.authenticate_agent(&[6; 32], T0).unwrap();
    c.share_agent(a.id, 1, ShareRole::Viewer).unwrap();
    let gone = c.delete_user(bob.id).unwrap().unwrap();
    assert_eq!(gone.agent_ids, vec![a.id]);
    assert!(c.user(bob.id).unwrap().is_none());
    assert!(c.user_by_name("bob").unwrap().is_none());
    assert!(c.agent(a.id).unwrap().is_none());
    assert!(c.cached_agent_auth(&[6; 32]).is_none());
    assert!(c.shared_with(1).unwrap().is_empty());
    // The name is free again.
    c.create_user_as_admin("bob", "h", false, T0).unwrap();
}

#[test]
fn an_invitation_is_used_once_and_expires() {
    let (_dir, c) = open();
    let alice = c.create_user("alice", "h", false, T0).unwrap();
    let inv = |name: &str, expires_ms| InvitationRecord {
        username: name.into(),
        created_by: alice.id,
        created_ms: T0,
        expires_ms,
    };
    c.create_invitation(&[1; 32], &inv("carol", T0 + 100))
        .unwrap();
    assert!(matches!(
        c.create_invitation(&[2; 32], &inv("carol", T0 + 100)),
        Err(CatalogError::UsernameTaken { .. })
    ));
    assert!(matches!(
        c.create_invitation(&[2; 32], &inv("alice", T0 + 100)),
        Err(CatalogError::UsernameTaken { .. })
    ));
    assert!(matches!(
        c.accept_invitation(&[1; 32], "h2", T0 + 100),
        Err(CatalogError::InvitationExpired)
    ));
    let carol = c.accept_invitation(&[1; 32], "h2", T0 + 99).unwrap();
    assert_eq!((carol.username.as_str(), carol.is_admin), ("carol", false));
    assert!(matches!(
        c.accept_invitation(&[1; 32], "h3", T0 + 1),
        Err(CatalogError::InvitationInvalid)
    ));
    assert!(matches!(
        c.accept_invitation(&[9; 32], "h3", T0 + 1),
        Err(CatalogError::InvitationInvalid)
    ));
}

#[test]
fn records_never_panic_on_damaged_bytes() {
    let agent = AgentRecordV1 {
        id: 8,
        owner_id: 1,
        name: "nas".into(),
        created_ms: T0,
        token_hash: [10; 32],
        token_created_ms: T0,
        activated_ms: Some(T0),
        last_seen_ms: Some(T0),
        interval_ms: Some(5000),
        host: None,
    };
    let good = codec::encode("agent", &agent).unwrap();
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            let _ = agents::decode_agent("agent", &bad);
            let _ = codec::decode::<SessionRecord>("session", &bad);
            let _ = users::decode_user("user", &bad);
            let mut v2 = bad.clone();
            v2[0] = codec::VERSION_2;
            let _ = agents::decode_agent("agent", &v2);
            let _ = users::decode_user("user", &v2);
        }
    }
}

#[test]
fn a_totp_step_is_accepted_once_and_recovery_codes_once_each() {
    let (_dir, c) = open();
    let alice = c.create_user("alice", "h", false, T0).unwrap();
    assert!(c.begin_totp(alice.id, &[1; 20], T0).unwrap());
    assert!(!c.has_two_factor(alice.id), "pending is not on");
    assert!(
        !c.use_totp_step(alice.id, 10).unwrap(),
        "not before confirmation"
    );
    assert!(
        c.confirm_totp(alice.id, 10, vec![[7; 32], [8; 32]])
            .unwrap()
    );
    assert!(c.has_two_factor(alice.id));
    assert!(
        !c.begin_totp(alice.id, &[2; 20], T0).unwrap(),
        "on: not replaced"
    );
    assert!(
        !c.use_totp_step(alice.id, 10).unwrap(),
        "the confirming step is spent"
    );
    assert!(c.use_totp_step(alice.id, 11).unwrap());
    assert!(!c.use_totp_step(alice.id, 11).unwrap());
    assert!(!c.use_totp_step(alice.id, 9).unwrap(), "never backwards");
    assert_eq!(c.use_recovery_code(alice.id, &[7; 32]).unwrap(), Some(1));
    assert_eq!(c.use_recovery_code(alice.id, &[7; 32]).unwrap(), None);
    // The policy and the enrolment survive a reopen.
    c.set_account_policy(AccountPolicyRecord {
        require_two_factor: true,
    })
    .unwrap();
    let bob = c.create_user("bob", "h", true, T0).unwrap();
    assert_eq!(c.restriction(bob.id), Some(Restriction::EnrolTwoFactor));
    assert_eq!(c.restriction(alice.id), None);
    let path = c.path().to_path_buf();
    drop(c);
    let c = Catalog::open(&path).unwrap();
    assert!(c.has_two_factor(alice.id));
    assert_eq!(c.restriction(bob.id), Some(Restriction::EnrolTwoFactor));
    assert!(c.remove_totp(alice.id).unwrap());
    assert_eq!(c.restriction(alice.id), Some(Restriction::EnrolTwoFactor));
}
