//! The diesel view of the domain tables (kept by hand in step with `migrations/`).

diesel::table! {
    uploads (id) {
        id -> Uuid,
        owner_id -> Text,
        owner_group -> Text,
        file_name -> Text,
        declared_size -> Int8,
        declared_content_type -> Text,
        temp_key -> Text,
        store_upload_id -> Text,
        part_size -> Int8,
        part_count -> Int4,
        state -> Text,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        expires_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    upload_parts (upload_id, part_number) {
        upload_id -> Uuid,
        part_number -> Int4,
        content_md5 -> Bytea,
        size_bytes -> Int8,
        signed_at -> Timestamptz,
    }
}

diesel::table! {
    upload_progress (upload_id, stage) {
        upload_id -> Uuid,
        stage -> Text,
        status -> Text,
        bytes_done -> Int8,
        bytes_total -> Int8,
        detail -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    upload_metadata (upload_id) {
        upload_id -> Uuid,
        size_bytes -> Int8,
        md5_hex -> Text,
        sha256_hex -> Text,
        sniffed_content_type -> Text,
        computed_at -> Timestamptz,
    }
}

diesel::joinable!(upload_parts -> uploads (upload_id));
diesel::joinable!(upload_progress -> uploads (upload_id));
diesel::joinable!(upload_metadata -> uploads (upload_id));
diesel::allow_tables_to_appear_in_same_query!(
    uploads,
    upload_parts,
    upload_progress,
    upload_metadata
);
