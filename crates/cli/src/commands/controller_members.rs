//! `orca controller members` (also `orca cluster-status`): the controller
//! cluster as one controller sees it. Also the shape and the table of a
//! `MembersReply`, which `join` and `remove-member` print as well.

use super::Ctx;
use crate::failover::Call;
use crate::output::{self, OutputFormat};
use comfy_table::{presets, Table};
use orca_api::v1::{MembersReply, MembersRequest};
use serde_json::{json, Value};

pub const OPERATION: &str = "Members";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub async fn run(_args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let reply = ctx
        .admin(
            OPERATION,
            Call::Read,
            MembersRequest {},
            |mut c, r| async move { c.members(r).await },
        )
        .await?;
    Ok(reply_json(&reply))
}

/// The reply as JSON, camelCase like the rest of the CLI's output.
pub fn reply_json(reply: &MembersReply) -> Value {
    let members: Vec<Value> = reply
        .members
        .iter()
        .map(|m| {
            json!({
                "nodeId": m.node_id,
                "address": m.address,
                "role": m.role,
                "voter": m.voter,
                "matchedIndex": m.matched_index,
                "lag": m.lag,
            })
        })
        .collect();
    json!({
        "responderId": reply.responder_id,
        "leaderId": reply.leader_id,
        "term": reply.term,
        "lastLogIndex": reply.last_log_index,
        "lastAppliedIndex": reply.last_applied_index,
        "leaderWorkTerm": reply.leader_work_term,
        "snapshotIndex": reply.snapshot_index,
        "purgedIndex": reply.purged_index,
        "members": members,
    })
}

/// A members reply in `format`: the table is the one this file draws (a
/// leader/term line, then a row per member); JSON and text are the CLI's own.
pub fn render(format: OutputFormat, operation: &str, reply: &Value) -> String {
    match format {
        OutputFormat::Table => table(operation, reply),
        other => output::render(other, operation, reply),
    }
}

fn table(operation: &str, reply: &Value) -> String {
    let num = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let leader = match num(reply, "leaderId") {
        0 => "leader unknown".to_string(),
        id => format!("leader {id}"),
    };
    let mut out = format!(
        "{operation}\n{leader}, term {}, last log index {}, last applied index {} (answered by {})\n",
        num(reply, "term"),
        num(reply, "lastLogIndex"),
        num(reply, "lastAppliedIndex"),
        num(reply, "responderId"),
    );
    let mut t = Table::new();
    t.load_preset(presets::ASCII_FULL_CONDENSED);
    t.set_header(["node id", "address", "role", "voter", "matched", "lag"]);
    let members = reply.get("members").and_then(Value::as_array);
    for m in members.into_iter().flatten() {
        let voter = m.get("voter").and_then(Value::as_bool).unwrap_or(false);
        t.add_row([
            num(m, "nodeId").to_string(),
            m.get("address")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            m.get("role")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            if voter { "yes" } else { "no" }.to_string(),
            num(m, "matchedIndex").to_string(),
            num(m, "lag").to_string(),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use orca_api::v1::Member;

    fn sample() -> MembersReply {
        let member = |node_id, role: &str, voter, matched_index, lag| Member {
            node_id,
            address: format!("127.0.0.1:747{node_id}"),
            role: role.into(),
            voter,
            matched_index,
            lag,
        };
        MembersReply {
            responder_id: 2,
            leader_id: 1,
            term: 3,
            last_log_index: 42,
            last_applied_index: 41,
            members: vec![
                member(1, "leader", true, 42, 0),
                member(2, "follower", true, 40, 2),
                member(4, "learner", false, 0, 42),
            ],
            leader_work_term: 0,
            snapshot_index: 30,
            purged_index: 0,
            plans: 0,
        }
    }

    #[test]
    fn json_has_the_documented_keys_in_order() {
        let out = output::render(OutputFormat::Json, OPERATION, &reply_json(&sample()));
        let keys: Vec<&str> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys[..15],
            [
                "responderId",
                "leaderId",
                "term",
                "lastLogIndex",
                "lastAppliedIndex",
                "leaderWorkTerm",
                "snapshotIndex",
                "purgedIndex",
                "members",
                "nodeId",
                "address",
                "role",
                "voter",
                "matchedIndex",
                "lag"
            ]
        );
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(v["members"][2]["voter"], json!(false));
        assert_eq!(v["members"][1]["lag"], json!(2));
    }

    #[test]
    fn table_has_the_leader_line_and_a_row_per_member() {
        let out = render(OutputFormat::Table, OPERATION, &reply_json(&sample()));
        let expected = "\
Members
leader 1, term 3, last log index 42, last applied index 41 (answered by 2)
+---------+----------------+----------+-------+---------+-----+
| node id | address        | role     | voter | matched | lag |
+=============================================================+
| 1       | 127.0.0.1:7471 | leader   | yes   | 42      | 0   |
| 2       | 127.0.0.1:7472 | follower | yes   | 40      | 2   |
| 4       | 127.0.0.1:7474 | learner  | no    | 0       | 42  |
+---------+----------------+----------+-------+---------+-----+
";
        assert_eq!(out, expected, "\n{out}");

        let mut lost = sample();
        lost.leader_id = 0;
        lost.members.clear();
        let out = render(OutputFormat::Table, OPERATION, &reply_json(&lost));
        assert!(out.contains("\nleader unknown, term 3,"), "{out}");
    }

    #[test]
    fn text_uses_the_generic_renderer() {
        let out = render(OutputFormat::Text, OPERATION, &reply_json(&sample()));
        assert!(out.starts_with("41\t42\t1\t0\t0\t2\t30\t3\n"), "{out}");
        assert!(
            out.contains("MEMBERS\t127.0.0.1:7471\t0\t42\t1\tleader\tTrue\n"),
            "{out}"
        );
    }
}
