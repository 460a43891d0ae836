//! `orca list-attributes [--cluster C] --target-type container-instance
//! [--attribute-name N [--attribute-value V]]`, and/or `--cli-input-json`;
//! paginated like the other list commands, over ECS `Attribute` objects.

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use crate::input;
use crate::paginate::{self, PageArgs};
use orca_api::v1::EcsJsonRequest;
use serde_json::{Map, Value};

pub const OPERATION: &str = "ListAttributes";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// container-instance (the only type ECS has).
    #[arg(long, required_unless_present = "cli_input_json")]
    pub target_type: Option<String>,
    /// Only attributes with this name.
    #[arg(long)]
    pub attribute_name: Option<String>,
    /// Only attributes with this value (needs --attribute-name).
    #[arg(long)]
    pub attribute_value: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

/// The input every page's call starts from: `--cli-input-json` (read once)
/// and the flags' keys.
pub struct Input {
    cli_input_json: Option<String>,
    flags: Map<String, Value>,
}

impl Input {
    pub fn new(a: &Args) -> Result<Self, CliError> {
        let text = |v: &Option<String>| v.clone().map(Value::String);
        Ok(Input {
            cli_input_json: a
                .cli_input_json
                .as_deref()
                .map(|raw| input::read_param("--cli-input-json", raw))
                .transpose()?,
            flags: shape::input_object([
                ("cluster", text(&a.cluster)),
                ("targetType", text(&a.target_type)),
                ("attributeName", text(&a.attribute_name)),
                ("attributeValue", text(&a.attribute_value)),
            ]),
        })
    }

    /// The `input_json` of the call for one page.
    pub fn page(&self, next_token: String, max_results: u32) -> Result<String, CliError> {
        let mut flags = self.flags.clone();
        flags.extend(shape::input_object([
            ("nextToken", shape::page_token(next_token)),
            ("maxResults", shape::page_size(max_results)),
        ]));
        input::merge_cli_input(self.cli_input_json.as_deref(), flags)
    }
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = Input::new(args)?;
    // A bad --cli-input-json is a usage error before any connection.
    input.page(String::new(), 0)?;
    let input = &input;
    let listing = paginate::collect(&args.page, |next_token, max_results| async move {
        let request = EcsJsonRequest {
            input_json: input.page(next_token, max_results)?,
        };
        let reply = ctx
            .ecs(OPERATION, Call::Read, request, |mut c, r| async move {
                c.list_attributes(r).await
            })
            .await?;
        shape::json_value_page(&shape::ecs_json(&reply)?, "attributes")
    })
    .await?;
    Ok(listing.to_json("attributes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paginate::{Listing, Page};
    use serde_json::json;

    fn parsed(text: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(text)?)
    }

    #[test]
    fn flags_and_page_keys_build_each_call() -> anyhow::Result<()> {
        let a = Args {
            cluster: Some("prod".into()),
            target_type: Some("container-instance".into()),
            attribute_name: Some("stack".into()),
            attribute_value: Some("prod".into()),
            ..Args::default()
        };
        let input = Input::new(&a)?;
        assert_eq!(
            input.page(String::new(), 0)?,
            json!({"cluster": "prod", "targetType": "container-instance", "attributeName": "stack", "attributeValue": "prod"})
                .to_string()
        );
        assert_eq!(
            parsed(&input.page("t1".into(), 5)?)?,
            json!({"cluster": "prod", "targetType": "container-instance", "attributeName": "stack",
                   "attributeValue": "prod", "nextToken": "t1", "maxResults": 5})
        );
        Ok(())
    }

    #[test]
    fn cli_input_json_is_read_once_and_overridden_by_flags() -> anyhow::Result<()> {
        let mut f = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(
            &mut f,
            b"{\"cluster\": \"c\", \"targetType\": \"container-instance\"}",
        )?;
        let a = Args {
            cli_input_json: Some(format!("file://{}", f.path().display())),
            attribute_name: Some("zone".into()),
            ..Args::default()
        };
        let input = Input::new(&a)?;
        drop(f);
        assert_eq!(
            parsed(&input.page("t2".into(), 0)?)?,
            json!({"cluster": "c", "targetType": "container-instance", "attributeName": "zone", "nextToken": "t2"})
        );
        let a = Args {
            cli_input_json: Some("[]".into()),
            ..Args::default()
        };
        assert!(
            matches!(Input::new(&a)?.page(String::new(), 0), Err(CliError::Usage(m)) if m.contains("--cli-input-json"))
        );
        Ok(())
    }

    #[tokio::test]
    async fn attribute_objects_page_like_arns() -> anyhow::Result<()> {
        let attr = |i: u32| json!({"name": format!("a{i}"), "value": "v", "targetId": "i"});
        let args = PageArgs {
            max_items: Some(3),
            page_size: Some(2),
            ..PageArgs::default()
        };
        let listing: Listing<Value> = paginate::collect(&args, |token, max| async move {
            let start: u32 = if token.is_empty() { 0 } else { token.parse()? };
            let output = json!({
                "attributes": (start..start + max).map(attr).collect::<Vec<_>>(),
                "nextToken": (start + max).to_string(),
            });
            let page: Page<Value> = shape::json_value_page(&output, "attributes")?;
            Ok(page)
        })
        .await?;
        let out = listing.to_json("attributes");
        assert_eq!(out["attributes"], json!([attr(0), attr(1), attr(2)]));
        assert!(out["NextToken"].is_string(), "{out}");
        Ok(())
    }
}
