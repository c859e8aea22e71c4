//! Reads of items: the item, its files and its latest submission.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::ItemId;

use crate::DbError;
use crate::models::{ItemFileRow, ItemRow, SubmissionRow};
use crate::schema::{item_files, item_submissions, items};

find_by_key!(
    /// One item.
    item,
    items,
    ItemId,
    ItemRow
);

/// The item's latest submission.
pub async fn latest_submission(
    conn: &mut AsyncPgConnection,
    id: ItemId,
) -> Result<Option<SubmissionRow>, DbError> {
    Ok(item_submissions::table
        .filter(item_submissions::item_id.eq(id))
        .order(item_submissions::seq.desc())
        .select(SubmissionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The item's files, oldest first.
pub async fn files(conn: &mut AsyncPgConnection, id: ItemId) -> Result<Vec<ItemFileRow>, DbError> {
    Ok(item_files::table
        .filter(item_files::item_id.eq(id))
        .order((item_files::created_at.asc(), item_files::id.asc()))
        .select(ItemFileRow::as_select())
        .load(conn)
        .await?)
}
