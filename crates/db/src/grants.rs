//! Who besides the owner may read an item: access grants.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use upload_domain::{ItemId, SellerId};

use crate::DbError;
use crate::schema::item_grants;

/// True when `user` was granted access to the item.
pub async fn is_granted(
    conn: &mut AsyncPgConnection,
    id: ItemId,
    user: &SellerId,
) -> Result<bool, DbError> {
    let found: i64 = item_grants::table
        .filter(item_grants::item_id.eq(id))
        .filter(item_grants::user_id.eq(user))
        .count()
        .get_result(conn)
        .await?;
    Ok(found > 0)
}

/// Grants `user` access to the item; granting twice is one grant.
pub async fn grant(
    conn: &mut AsyncPgConnection,
    id: ItemId,
    user: &SellerId,
) -> Result<(), DbError> {
    diesel::insert_into(item_grants::table)
        .values((item_grants::item_id.eq(id), item_grants::user_id.eq(user)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes a grant back; revoking one that does not exist succeeds.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    id: ItemId,
    user: &SellerId,
) -> Result<(), DbError> {
    diesel::delete(
        item_grants::table
            .filter(item_grants::item_id.eq(id))
            .filter(item_grants::user_id.eq(user)),
    )
    .execute(conn)
    .await?;
    Ok(())
}
