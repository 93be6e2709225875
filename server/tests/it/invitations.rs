//! The admin revokes a pending invitation: the link stops working and the
//! name is free again; only an admin may, and only a pending one.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, TestApp};

#[tokio::test]
async fn a_revoked_invitation_link_no_longer_works_and_frees_the_name() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let invite = |name: &'static str| {
        let (app, alice) = (&app, &alice);
        async move {
            let r = app
                .call_as(
                    alice,
                    Method::POST,
                    "/api/admin/users",
                    Some(json!({ "username": name, "access": "invitation" })),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["invitation"]["token"].as_str().unwrap().to_string()
        }
    };
    let carol = invite("carol").await;
    invite("dave").await;

    let r = app
        .call_as(&alice, Method::DELETE, "/api/admin/invitations/Carol", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .call_as(&alice, Method::GET, "/api/admin/invitations", None)
        .await;
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dave"], "only carol's went");

    // The link is dead: no account.
    let r = app
        .post(
            "/api/auth/invitation",
            json!({ "token": carol, "password": PASSWORD }),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(
        app.login_reply("carol", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Revoked twice, or never invited: 404.
    for name in ["carol", "nobody"] {
        let r = app
            .call_as(
                &alice,
                Method::DELETE,
                &format!("/api/admin/invitations/{name}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}: {}", r.text);
        assert_eq!(r.code(), "not_found");
    }
    // The name is free again.
    invite("carol").await;

    // Not for a non-admin: erin accepts hers and tries to revoke carol's.
    let erin_token = invite("erin").await;
    let r = app
        .post(
            "/api/auth/invitation",
            json!({ "token": erin_token, "password": PASSWORD }),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let erin = app.login("erin").await;
    let r = app
        .call_as(&erin, Method::DELETE, "/api/admin/invitations/carol", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app
        .call_as(&alice, Method::GET, "/api/admin/invitations", None)
        .await;
    assert_eq!(
        r.body.as_array().unwrap().len(),
        2,
        "carol and dave still pending"
    );
}
