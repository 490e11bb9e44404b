//! The API's OpenAPI 3.1 description: `server/openapi.json`, written by hand (see
//! docs/adr/0008-openapi.md), compiled in and served at `GET /openapi.json`. The tests keep it true
//! to the code: the same routes as [`crate::http::route_table`], the roles of
//! [`crate::authz::allowed`] per operation (`x-roles`), and schemas with the fields the wire types
//! of [`weldguard_model::protocol`] actually serialize.

/// The document, as checked in.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::NaiveDate;
    use serde::Serialize;
    use serde_json::Value;
    use weldguard_model::domain::{
        Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus,
        OperationCategory, Revocation, RevocationTarget,
    };
    use weldguard_model::protocol::*;
    use weldguard_model::records::{
        AnnouncedPeriod, CalendarDay, CalendarDayKind, RegistryChange, TrustedIssuerKey,
    };

    use super::OPENAPI_JSON;
    use crate::authz::allowed;
    use crate::http::route_table;

    fn doc() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

    #[test]
    fn it_is_openapi_3_and_documents_exactly_the_routes_the_router_serves() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                assert!(METHODS.contains(&method.as_str()), "{path} {method}");
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = route_table()
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "served but not documented: {missing:?}; documented but not served: {extra:?}"
        );
    }

    #[test]
    fn every_operation_states_the_security_and_roles_of_the_role_table() {
        let doc = doc();
        for route in route_table() {
            let op = &doc["paths"][route.path][route.method.to_lowercase()];
            let name = format!("{} {}", route.method, route.path);
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no security"));
            let roles: Option<BTreeSet<&str>> = op["x-roles"]
                .as_array()
                .map(|a| a.iter().map(|r| r.as_str().unwrap()).collect());
            match route.endpoint {
                None => {
                    assert!(security.is_empty(), "{name} is open: security must be []");
                    assert!(roles.is_none(), "{name} is open: no x-roles");
                }
                Some(endpoint) => {
                    assert_eq!(
                        security,
                        &vec![serde_json::json!({"deviceToken": []})],
                        "{name}"
                    );
                    let expected: BTreeSet<&str> = Role::ALL
                        .into_iter()
                        .filter(|r| allowed(*r, endpoint))
                        .map(Role::as_str)
                        .collect();
                    assert_eq!(roles.as_ref(), Some(&expected), "{name}: x-roles");
                    assert!(op["responses"]["401"].is_object(), "{name}: 401");
                    assert_eq!(
                        op["responses"]["403"].is_object(),
                        expected.len() < Role::ALL.len(),
                        "{name}: a 403 answer exactly when some role is refused"
                    );
                }
            }
            // Path parameters: exactly the template's.
            let in_template: BTreeSet<&str> = route
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(in_template, declared, "{name}: path parameters");
            assert!(op["responses"]["200"].is_object(), "{name}: 200");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        fn walk(v: &Value, refs: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        refs.push(r.clone());
                    }
                    m.values().for_each(|v| walk(v, refs));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(refs.len() > 30);
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "dangling {r}");
        }
    }

    fn licence(employer: Option<&str>) -> Licence {
        Licence {
            certificate_no: "T370983199001010012".into(),
            id_number: "370983199001010012".into(),
            name: "焊工".into(),
            categories: vec![OperationCategory::FusionWeldingAndCutting],
            issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
            expires_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
            next_review_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: employer.map(str::to_owned),
        }
    }

    fn machine() -> Machine {
        Machine {
            machine_id: "FC-M-00001".into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: "91370983MA3C000000".into(),
            region: 370983,
            status: MachineStatus::Active,
        }
    }

    fn json<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    /// The object schema's property names equal the sample's keys, and its required names are
    /// among them.
    fn assert_fields(doc: &Value, schema: &str, samples: &[Value]) {
        let s = &doc["components"]["schemas"][schema];
        let props: BTreeSet<&str> = s["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema}: no properties"))
            .keys()
            .map(String::as_str)
            .collect();
        let mut seen = BTreeSet::new();
        for sample in samples {
            let keys: BTreeSet<&str> = sample
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                keys.is_subset(&props),
                "{schema}: undocumented fields {:?}",
                keys.difference(&props).collect::<Vec<_>>()
            );
            for r in s["required"].as_array().unwrap() {
                assert!(
                    keys.contains(r.as_str().unwrap()),
                    "{schema}: required {r} missing in {sample}"
                );
            }
            seen.extend(keys);
        }
        assert_eq!(
            seen, props,
            "{schema}: documented fields the type never writes"
        );
    }

    fn assert_enum(doc: &Value, schema: &str, values: &[Value]) {
        let documented: BTreeSet<&str> = doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}: no enum"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let actual: BTreeSet<&str> = values.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(documented, actual, "{schema}");
    }

    #[test]
    fn schemas_have_the_fields_the_wire_types_write() {
        let doc = doc();
        let d = &doc;
        let role = Role::Welder;
        assert_fields(
            d,
            "ErrorBody",
            &[json(&ErrorBody {
                code: "c".into(),
                message: "m".into(),
            })],
        );
        assert_fields(
            d,
            "NewEnrolment",
            &[
                json(&NewEnrolment {
                    person: "p".into(),
                    role,
                    person_id: None,
                    permit_roles: vec![],
                }),
                json(&NewEnrolment {
                    person: "p".into(),
                    role,
                    person_id: Some("S-1".into()),
                    permit_roles: vec!["supervisor".into()],
                }),
            ],
        );
        assert_fields(
            d,
            "EnrolmentCode",
            &[
                json(&EnrolmentCode {
                    code: "c".into(),
                    person: "p".into(),
                    role,
                    person_id: None,
                    permit_roles: vec![],
                }),
                json(&EnrolmentCode {
                    code: "c".into(),
                    person: "p".into(),
                    role,
                    person_id: Some("S-1".into()),
                    permit_roles: vec!["supervisor".into()],
                }),
            ],
        );
        assert_fields(
            d,
            "EnrolRequest",
            &[json(&EnrolRequest {
                code: "c".into(),
                public_key: "04".into(),
                device_name: "d".into(),
            })],
        );
        assert_fields(
            d,
            "EnrolResponse",
            &[
                json(&EnrolResponse {
                    device_id: "d".into(),
                    token: "t".into(),
                    person: "p".into(),
                    person_id: "S-1".into(),
                    role,
                    token_expires_at_ms: Some(1),
                }),
                json(&EnrolResponse {
                    device_id: "d".into(),
                    token: "t".into(),
                    person: "p".into(),
                    person_id: "S-1".into(),
                    role,
                    token_expires_at_ms: None,
                }),
            ],
        );
        assert_fields(
            d,
            "AuthChallengeRequest",
            &[json(&AuthChallengeRequest {
                device_id: "d".into(),
            })],
        );
        assert_fields(
            d,
            "AuthChallenge",
            &[json(&AuthChallenge {
                nonce: "n".into(),
                expires_at_ms: 1,
            })],
        );
        assert_fields(
            d,
            "TokenRefreshRequest",
            &[json(&TokenRefreshRequest {
                device_id: "d".into(),
                nonce: "n".into(),
                signature: "00".into(),
            })],
        );
        assert_fields(
            d,
            "TokenRefreshResponse",
            &[
                json(&TokenRefreshResponse {
                    token: "t".into(),
                    token_expires_at_ms: Some(1),
                }),
                json(&TokenRefreshResponse {
                    token: "t".into(),
                    token_expires_at_ms: None,
                }),
            ],
        );
        assert_fields(
            d,
            "Identity",
            &[json(&Identity {
                device_id: "d".into(),
                person: "p".into(),
                person_id: "S-1".into(),
                role,
            })],
        );
        assert_fields(
            d,
            "RegistryWriteResponse",
            &[json(&RegistryWriteResponse {
                changes: 1,
                last_seq: 2,
            })],
        );
        assert_fields(
            d,
            "SignerDirectoryResponse",
            &[json(&SignerDirectoryResponse {
                document: "AA==".into(),
            })],
        );
        assert_fields(
            d,
            "CompactRequest",
            &[json(&CompactRequest {
                through_seq: Some(3),
            })],
        );
        let entry = PushEntry {
            idempotency_key: "k".into(),
            kind: "work_session".into(),
            payload: "{}".into(),
        };
        assert_fields(d, "PushEntry", &[json(&entry)]);
        assert_fields(
            d,
            "PushRequest",
            &[json(&PushRequest {
                entries: vec![entry],
            })],
        );
        let applied = PushResult {
            idempotency_key: "k".into(),
            status: PushStatus::Applied,
            reason: None,
        };
        let rejected = PushResult {
            idempotency_key: "k".into(),
            status: PushStatus::Rejected,
            reason: Some("r".into()),
        };
        assert_fields(d, "PushResult", &[json(&applied), json(&rejected)]);
        assert_fields(
            d,
            "PushResponse",
            &[json(&PushResponse {
                results: vec![applied],
            })],
        );
        assert_fields(
            d,
            "PullResponse",
            &[json(&PullResponse {
                changes: vec![],
                next_cursor: "c".into(),
                has_more: false,
            })],
        );
        // Permit heads: a real permit version inside the record.
        let f = crate::permits::fixture::Fx::new();
        let head = crate::permits::fixture::record("s0", "draft", &f.draft());
        assert_fields(d, "PermitStepRecord", &[json(&head)]);
        assert_fields(
            d,
            "PermitPage",
            &[json(&PermitPage {
                heads: vec![head],
                next_cursor: "c".into(),
                has_more: false,
            })],
        );
        let record = StoredRecord {
            idempotency_key: "k".into(),
            kind: "permit_step".into(),
            payload: "{}".into(),
            device_id: "d".into(),
            received_at_ms: 1,
        };
        assert_fields(d, "StoredRecord", &[json(&record)]);
        assert_fields(
            d,
            "RecordList",
            &[json(&RecordList {
                records: vec![record],
                next_cursor: "12".into(),
                has_more: true,
            })],
        );
        assert_fields(
            d,
            "Licence",
            &[json(&licence(None)), json(&licence(Some("org")))],
        );
        assert_fields(d, "Machine", &[json(&machine())]);
        let binding = Binding {
            machine_id: "m".into(),
            certificate_no: "c".into(),
        };
        assert_fields(d, "Binding", &[json(&binding)]);
        let revocation = Revocation {
            target: RevocationTarget::Credential,
            id: "C-1".into(),
        };
        assert_fields(d, "Revocation", &[json(&revocation)]);
        let key = TrustedIssuerKey {
            kid: "k1".into(),
            algorithm: "ES256".into(),
            public_key: vec![4, 1],
            issuer: "370983".into(),
        };
        assert_fields(d, "TrustedIssuerKey", &[json(&key)]);

        assert_enum(d, "Role", &Role::ALL.map(|r| json(&r)));
        assert_enum(
            d,
            "PushStatus",
            &[
                PushStatus::Applied,
                PushStatus::Duplicate,
                PushStatus::Rejected,
            ]
            .map(|s| json(&s)),
        );
        assert_enum(
            d,
            "OperationCategory",
            &[
                OperationCategory::FusionWeldingAndCutting,
                OperationCategory::PressureWelding,
                OperationCategory::Brazing,
            ]
            .map(|s| json(&s)),
        );
        assert_enum(
            d,
            "LicenceStatus",
            &[LicenceStatus::Valid, LicenceStatus::Revoked].map(|s| json(&s)),
        );
        assert_enum(
            d,
            "MachineKind",
            &[
                MachineKind::Arc,
                MachineKind::Plasma,
                MachineKind::GasCutting,
                MachineKind::GasWelding,
                MachineKind::Resistance,
                MachineKind::Spot,
                MachineKind::Friction,
                MachineKind::Brazing,
                MachineKind::Soldering,
            ]
            .map(|s| json(&s)),
        );
        assert_enum(
            d,
            "MachineClass",
            &[
                MachineClass::Mobile,
                MachineClass::FixedStation,
                MachineClass::LegacyRegistered,
            ]
            .map(|s| json(&s)),
        );
        assert_enum(
            d,
            "MachineStatus",
            &[MachineStatus::Active, MachineStatus::Retired].map(|s| json(&s)),
        );
        assert_enum(
            d,
            "RevocationTarget",
            &[
                RevocationTarget::Licence,
                RevocationTarget::Credential,
                RevocationTarget::IssuerKey,
                RevocationTarget::Machine,
            ]
            .map(|s| json(&s)),
        );

        // Every registry change: its `op` has a variant, whose fields are the rest of the object.
        let changes = vec![
            RegistryChange::UpsertLicence(licence(None)),
            RegistryChange::DeleteLicence {
                certificate_no: "c".into(),
            },
            RegistryChange::UpsertMachine(machine()),
            RegistryChange::DeleteMachine {
                machine_id: "m".into(),
            },
            RegistryChange::Bind(binding.clone()),
            RegistryChange::Unbind(binding),
            RegistryChange::Revoke(revocation.clone()),
            RegistryChange::Unrevoke(revocation),
            RegistryChange::UpsertIssuerKey(key),
            RegistryChange::DeleteIssuerKey { kid: "k1".into() },
            RegistryChange::SetCalendarDay(CalendarDay {
                date: NaiveDate::from_ymd_opt(2027, 10, 1).unwrap(),
                kind: CalendarDayKind::Holiday,
            }),
            RegistryChange::ClearCalendarDay {
                date: NaiveDate::from_ymd_opt(2027, 10, 1).unwrap(),
            },
            RegistryChange::AnnouncePeriod(AnnouncedPeriod {
                period_id: "p".into(),
                name: "n".into(),
                from: 1,
                until: 2,
            }),
            RegistryChange::WithdrawPeriod {
                period_id: "p".into(),
            },
        ];
        assert_enum(
            d,
            "CalendarDayKind",
            &[
                CalendarDayKind::Holiday,
                CalendarDayKind::RestDay,
                CalendarDayKind::Workday,
            ]
            .map(|k| json(&k)),
        );
        let variants = d["components"]["schemas"]["RegistryChange"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(
            variants.len(),
            changes.len(),
            "one documented variant per change kind"
        );
        for change in &changes {
            exhaustive(change);
            let mut value = json(change);
            let op = value["op"].as_str().unwrap().to_owned();
            let variant = variants
                .iter()
                .find(|v| v["title"] == op.as_str())
                .unwrap_or_else(|| panic!("no variant for op {op}"));
            let rest = value.as_object_mut().unwrap();
            rest.remove("op");
            let rest = Value::Object(rest.clone());
            let op_schema = variant["allOf"].get(0).unwrap_or(variant);
            assert_eq!(op_schema["properties"]["op"]["const"], op.as_str());
            match variant["allOf"].get(1).and_then(|r| r["$ref"].as_str()) {
                Some(r) => assert_fields(d, r.rsplit('/').next().unwrap(), &[rest]),
                None => {
                    let keys: BTreeSet<String> =
                        rest.as_object().unwrap().keys().cloned().collect();
                    let props: BTreeSet<String> = variant["properties"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .filter(|k| *k != "op")
                        .cloned()
                        .collect();
                    assert_eq!(keys, props, "{op}");
                }
            }
        }
    }

    #[test]
    fn publishing_and_issuing_schemas_match_their_wire_types() {
        use weldguard_model::checksum::{Collection, RegistryChecksums};
        use weldguard_model::codes::{IssuerAlg, IssuerKey, TrustStore, TrustedKey};
        use weldguard_model::domain::{MachineClass, MachineKind, MachineLabel, WelderCredential};
        let d = &doc();
        let key = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let mut trust = TrustStore::new();
        trust.add(TrustedKey::for_key(&key, 0, Some(100))).unwrap();
        let file = json(&trust.to_file());
        let mut endorsed = trust.to_file();
        endorsed.endorsements = vec!["a1".into()];
        assert_fields(d, "TrustFile", &[file.clone(), json(&endorsed)]);
        assert_fields(d, "TrustFileKey", &[file["keys"][0].clone()]);
        assert_enum(
            d,
            "IssuerAlg",
            &[json(&IssuerAlg::EdDSA), json(&IssuerAlg::ES256)],
        );
        let doc_body = |v: &str| serde_json::json!({ "document": v });
        assert_fields(
            d,
            "StatusListResponse",
            &[json(&StatusListResponse {
                document: "AA==".into(),
            })],
        );
        assert_fields(
            d,
            "SnapshotResponse",
            &[json(&SnapshotResponse {
                document: "AA==".into(),
            })],
        );
        assert_eq!(
            json(&SnapshotResponse {
                document: "x".into()
            }),
            doc_body("x")
        );
        assert_fields(
            d,
            "ChecksumsResponse",
            &[json(&ChecksumsResponse {
                cursor: "e.1".into(),
                collections: RegistryChecksums::new().all(),
            })],
        );
        assert_fields(
            d,
            "CollectionChecksum",
            &[json(&RegistryChecksums::new().all()[0])],
        );
        assert_enum(
            d,
            "Collection",
            &Collection::ALL.iter().map(json).collect::<Vec<_>>(),
        );
        assert_fields(
            d,
            "IssuedCode",
            &[json(&IssuedCode {
                code: "WG1:".into(),
                kid: "k".into(),
            })],
        );
        assert_fields(
            d,
            "RotateKeyRequest",
            &[json(&RotateKeyRequest {
                algorithm: Some(IssuerAlg::ES256),
            })],
        );
        assert_fields(d, "RotatedKey", &[json(&RotatedKey { kid: "k".into() })]);
        assert_fields(
            d,
            "MachineLabel",
            &[json(&MachineLabel {
                machine_id: "M-1".into(),
                kind: MachineKind::Arc,
                class: MachineClass::Mobile,
                owner_org: "o".into(),
                region: 370983,
                issued_at: 1,
            })],
        );
        let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_fields(
            d,
            "WelderCredential",
            &[json(&WelderCredential {
                certificate_no: "T1".into(),
                id_number: "11010519491231002X".into(),
                name: "王五".into(),
                categories: vec![],
                issued_on: date,
                expires_on: date,
                next_review_on: date,
                photo_digest: vec![1],
                device_key: vec![2],
            })],
        );
    }

    #[test]
    fn warning_and_place_schemas_match_their_wire_types() {
        use weldguard_model::warnings::*;
        let d = &doc();
        let place = Place {
            district: "370983".into(),
            town: Some("370983001".into()),
            grid: Some("G-7".into()),
        };
        assert_fields(
            d,
            "Place",
            &[
                json(&place),
                json(&Place {
                    district: "370983".into(),
                    town: None,
                    grid: None,
                }),
            ],
        );
        let location = GeoPoint {
            latitude_e7: 361_826_000,
            longitude_e7: 1_167_685_000,
        };
        assert_fields(d, "GeoPoint", &[json(&location)]);
        let site = Site {
            site_id: "S1".into(),
            name: "工地".into(),
            place: place.clone(),
            location,
        };
        assert_fields(d, "Site", &[json(&site)]);
        let changes = [
            PlaceChange::UpsertSite(site),
            PlaceChange::DeleteSite {
                site_id: "S1".into(),
            },
            PlaceChange::PlaceMachine(MachinePlace {
                machine_id: "M".into(),
                place: place.clone(),
                site_id: Some("S1".into()),
                location: Some(location),
                watch: MachineWatch::Suspect,
            }),
            PlaceChange::UnplaceMachine {
                machine_id: "M".into(),
            },
            PlaceChange::PlaceLicence(LicencePlace {
                certificate_no: "T1".into(),
                place: place.clone(),
            }),
            PlaceChange::UnplaceLicence {
                certificate_no: "T1".into(),
            },
        ];
        let samples: Vec<Value> = changes.iter().map(json).collect();
        assert_fields(d, "PlaceChange", &samples);
        let ops: Vec<Value> = samples.iter().map(|s| s["op"].clone()).collect();
        let documented = d["components"]["schemas"]["PlaceChange"]["properties"]["op"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(&ops, documented);
        assert_enum(
            d,
            "MachineWatch",
            &[
                MachineWatch::Normal,
                MachineWatch::Suspect,
                MachineWatch::Modified,
            ]
            .map(|w| json(&w)),
        );
        assert_fields(
            d,
            "PlacesWriteResponse",
            &[json(&PlacesWriteResponse { changes: 1 })],
        );
        let scope = Scope::parse("district:370983").unwrap();
        assert_fields(
            d,
            "NewMonitor",
            &[json(&NewMonitor {
                person: "p".into(),
                scope: scope.clone(),
            })],
        );
        assert_fields(
            d,
            "MonitorCode",
            &[json(&MonitorCode {
                code: "C".into(),
                person: "p".into(),
                scope,
            })],
        );
        assert_enum(d, "WarningKind", &WarningKind::ALL.map(|k| json(&k)));
        assert_enum(
            d,
            "WarningState",
            &[
                WarningState::Open,
                WarningState::Acknowledged,
                WarningState::Closed,
            ]
            .map(|s| json(&s)),
        );
        let full = Warning {
            id: "1".into(),
            kind: WarningKind::RepeatedRefusals,
            title_zh: "z".into(),
            title_en: "e".into(),
            records: vec!["k".into()],
            machine_id: "M".into(),
            certificate_no: Some("T1".into()),
            place: Some(place),
            site_id: Some("S1".into()),
            at_ms: 1,
            raised_at_ms: 2,
            detail: serde_json::json!({"refusals": 3}),
            state: WarningState::Closed,
            acknowledged_by: Some("a".into()),
            acknowledged_at_ms: Some(3),
            closed_by: Some("a".into()),
            closed_at_ms: Some(4),
            close_note: Some("n".into()),
        };
        let bare = Warning {
            certificate_no: None,
            place: None,
            site_id: None,
            state: WarningState::Open,
            acknowledged_by: None,
            acknowledged_at_ms: None,
            closed_by: None,
            closed_at_ms: None,
            close_note: None,
            ..full.clone()
        };
        assert_fields(d, "Warning", &[json(&full), json(&bare)]);
        assert_fields(
            d,
            "WarningList",
            &[json(&WarningList {
                warnings: vec![bare],
                next_cursor: String::new(),
                has_more: false,
            })],
        );
        assert_fields(
            d,
            "CloseWarning",
            &[json(&CloseWarning { note: "n".into() })],
        );
    }

    /// Fails to compile when a change kind is added, so the list above is revisited.
    fn exhaustive(change: &RegistryChange) {
        match change {
            RegistryChange::UpsertLicence(_)
            | RegistryChange::DeleteLicence { .. }
            | RegistryChange::UpsertMachine(_)
            | RegistryChange::DeleteMachine { .. }
            | RegistryChange::Bind(_)
            | RegistryChange::Unbind(_)
            | RegistryChange::Revoke(_)
            | RegistryChange::Unrevoke(_)
            | RegistryChange::UpsertIssuerKey(_)
            | RegistryChange::DeleteIssuerKey { .. }
            | RegistryChange::SetCalendarDay(_)
            | RegistryChange::ClearCalendarDay { .. }
            | RegistryChange::AnnouncePeriod(_)
            | RegistryChange::WithdrawPeriod { .. } => {}
        }
    }
}
