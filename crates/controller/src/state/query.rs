//! Reads of the state: describe and list with ECS's filters and pagination.
//! Pure functions of the state; handlers call them under a read lock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use orca_core::arn::TaskDefinitionRef;
use orca_core::cluster::ClusterStatus;
use orca_core::task_definition::TaskDefinitionStatus;
use orca_core::{ApiError, Exception};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::clusters::{cluster_not_found, ClusterUsage};
use super::task_definitions::task_definition_not_found;
use super::{ClusterRecord, ClusterState, Failure, StoredTaskDefinition};

/// ECS's default and largest page.
pub const MAX_PAGE: u32 = 100;

/// A page of results and the token for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Paging parameters as a request gives them.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub next_token: String,
    /// 0 means the default.
    pub max_results: u32,
}

impl PageRequest {
    /// maxResults checked (ECS: 1..=100, 0 meaning 100).
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        match self.max_results {
            0 => Ok(MAX_PAGE as usize),
            n if n <= MAX_PAGE => Ok(n as usize),
            n => Err(ApiError::field(
                Exception::InvalidParameterException,
                "maxResults",
                format!("must be between 1 and {MAX_PAGE}, not {n}"),
            )),
        }
    }

    /// The last key of the previous page, from nextToken; None on the first
    /// page. Lets a caller with an ordered index seek to it instead of
    /// filtering from the start.
    pub(crate) fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, ApiError> {
        if self.next_token.is_empty() {
            Ok(None)
        } else {
            decode_token(&self.next_token).map(Some)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

impl SortOrder {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "" | "ASC" => Ok(SortOrder::Asc),
            "DESC" => Ok(SortOrder::Desc),
            other => Err(ApiError::field(
                Exception::InvalidParameterException,
                "sort",
                format!("must be ASC or DESC, not '{other}'"),
            )),
        }
    }
}

/// Which families ListTaskDefinitionFamilies returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyStatusFilter {
    /// Families with at least one ACTIVE revision.
    Active,
    /// Families with no ACTIVE revision left.
    Inactive,
    All,
}

impl FamilyStatusFilter {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "" | "ACTIVE" => Ok(FamilyStatusFilter::Active),
            "INACTIVE" => Ok(FamilyStatusFilter::Inactive),
            "ALL" => Ok(FamilyStatusFilter::All),
            other => Err(ApiError::field(
                Exception::InvalidParameterException,
                "status",
                format!("must be ACTIVE, INACTIVE or ALL, not '{other}'"),
            )),
        }
    }
}

pub fn parse_task_definition_status(s: &str) -> Result<TaskDefinitionStatus, ApiError> {
    match s {
        "" | "ACTIVE" => Ok(TaskDefinitionStatus::Active),
        "INACTIVE" => Ok(TaskDefinitionStatus::Inactive),
        "DELETE_IN_PROGRESS" => Ok(TaskDefinitionStatus::DeleteInProgress),
        other => Err(ApiError::field(
            Exception::InvalidParameterException,
            "status",
            format!("must be ACTIVE, INACTIVE or DELETE_IN_PROGRESS, not '{other}'"),
        )),
    }
}

/// Takes one page from `keys`, already filtered and in the order wanted. The
/// token is the last key returned, so a page stays right when items before it
/// are added or removed between calls.
pub(crate) fn paginate<K>(
    keys: impl Iterator<Item = K>,
    order: SortOrder,
    page: &PageRequest,
) -> Result<Page<K>, ApiError>
where
    K: Ord + Clone + Serialize + DeserializeOwned,
{
    let max = page.limit()?;
    let after: Option<K> = page.after()?;
    let mut rest = keys.filter(|k| match (&after, order) {
        (None, _) => true,
        (Some(a), SortOrder::Asc) => k > a,
        (Some(a), SortOrder::Desc) => k < a,
    });
    let items: Vec<K> = rest.by_ref().take(max).collect();
    let next_token = match (rest.next(), items.last()) {
        (Some(_), Some(last)) => Some(encode_token(last)),
        _ => None,
    };
    Ok(Page { items, next_token })
}

fn encode_token<K: Serialize>(key: &K) -> String {
    // Serializing a tuple of strings and numbers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

fn decode_token<K: DeserializeOwned>(token: &str) -> Result<K, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::field(
                Exception::InvalidParameterException,
                "nextToken",
                "is not a token this call returned",
            )
        })
}

impl ClusterState {
    pub fn describe_task_definition(
        &self,
        reference: &TaskDefinitionRef,
    ) -> Result<&StoredTaskDefinition, ApiError> {
        let family = self.families.get(&reference.family);
        let found = match reference.revision {
            Some(r) => family.and_then(|f| f.revisions.get(&r)),
            None => family.and_then(|f| {
                f.revisions
                    .values()
                    .rev()
                    .find(|s| s.task_definition.status == TaskDefinitionStatus::Active)
            }),
        };
        found.ok_or_else(|| task_definition_not_found(&reference.family, reference.revision))
    }

    pub fn list_task_definitions(
        &self,
        family_prefix: &str,
        status: TaskDefinitionStatus,
        order: SortOrder,
        page: &PageRequest,
    ) -> Result<Page<String>, ApiError> {
        let keys = self
            .families
            .range(family_prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(family_prefix))
            .flat_map(|(name, f)| {
                f.revisions
                    .iter()
                    .filter(move |(_, s)| s.task_definition.status == status)
                    .map(move |(rev, _)| (name.clone(), *rev))
            });
        let page = match order {
            SortOrder::Asc => paginate(keys, order, page)?,
            SortOrder::Desc => paginate(keys.collect::<Vec<_>>().into_iter().rev(), order, page)?,
        };
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|(f, r)| self.arn.task_definition(f, *r))
                .collect(),
            next_token: page.next_token,
        })
    }

    pub fn list_task_definition_families(
        &self,
        family_prefix: &str,
        filter: FamilyStatusFilter,
        page: &PageRequest,
    ) -> Result<Page<String>, ApiError> {
        let keys = self
            .families
            .range(family_prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(family_prefix))
            .filter(|(_, f)| {
                let active = f
                    .revisions
                    .values()
                    .any(|s| s.task_definition.status == TaskDefinitionStatus::Active);
                match filter {
                    FamilyStatusFilter::Active => active,
                    FamilyStatusFilter::Inactive => !active,
                    FamilyStatusFilter::All => true,
                }
            })
            .map(|(name, _)| name.clone());
        paginate(keys, SortOrder::Asc, page)
    }

    /// Describes clusters by name; missing ones become failures with reason
    /// MISSING, as in ECS.
    pub fn describe_clusters(
        &self,
        names: &[String],
    ) -> (Vec<(ClusterRecord, ClusterUsage)>, Vec<Failure>) {
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for name in names {
            match self.clusters.get(name) {
                Some(c) => found.push((c.clone(), self.cluster_usage(name))),
                None => failures.push(Failure {
                    arn: self.arn.cluster(name),
                    reason: "MISSING".to_string(),
                    detail: String::new(),
                }),
            }
        }
        (found, failures)
    }

    /// The named cluster if it is ACTIVE.
    pub fn active_cluster(&self, name: &str) -> Result<&ClusterRecord, ApiError> {
        self.clusters
            .get(name)
            .filter(|c| c.status == ClusterStatus::Active)
            .ok_or_else(|| cluster_not_found(name))
    }

    pub fn list_clusters(&self, page: &PageRequest) -> Result<Page<String>, ApiError> {
        let keys = self
            .clusters
            .values()
            .filter(|c| c.status == ClusterStatus::Active)
            .map(|c| c.name.clone());
        let page = paginate(keys, SortOrder::Asc, page)?;
        Ok(Page {
            items: page.items.iter().map(|n| self.arn.cluster(n)).collect(),
            next_token: page.next_token,
        })
    }
}
