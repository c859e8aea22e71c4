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
        idempotency_key -> Nullable<Text>,
        part_checksum -> Text,
    }
}

diesel::table! {
    upload_parts (upload_id, part_number) {
        upload_id -> Uuid,
        part_number -> Int4,
        content_md5 -> Nullable<Bytea>,
        size_bytes -> Int8,
        signed_at -> Timestamptz,
        checksum_sha256 -> Nullable<Bytea>,
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
        software -> Bool,
    }
}

diesel::table! {
    upload_scans (upload_id) {
        upload_id -> Uuid,
        verdict -> Text,
        signature -> Nullable<Text>,
        bytes_scanned -> Int8,
        quarantine_key -> Nullable<Text>,
        scanned_at -> Timestamptz,
        uninspected -> Nullable<Text>,
        engine_version -> Nullable<Text>,
        signature_version -> Nullable<Int8>,
        released_by -> Nullable<Text>,
        release_reason -> Nullable<Text>,
        released_signature -> Nullable<Text>,
    }
}

diesel::table! {
    upload_media (upload_id) {
        upload_id -> Uuid,
        container -> Text,
        duration_ms -> Nullable<Int8>,
        bit_rate -> Nullable<Int8>,
        width -> Nullable<Int4>,
        height -> Nullable<Int4>,
        video_codec -> Nullable<Text>,
        audio_codec -> Nullable<Text>,
        frame_rate -> Nullable<Float8>,
        probed_at -> Timestamptz,
    }
}

diesel::table! {
    upload_previews (upload_id, name) {
        upload_id -> Uuid,
        name -> Text,
        kind -> Text,
        content_type -> Text,
        object_key -> Text,
        width -> Int4,
        height -> Int4,
        size_bytes -> Int8,
        created_at -> Timestamptz,
        bucket -> Text,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        seller_id -> Text,
        upload_id -> Nullable<Uuid>,
        kind -> Text,
        message -> Text,
        details -> Jsonb,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        delivery_attempts -> Int4,
        last_error -> Nullable<Text>,
        submission_id -> Nullable<Uuid>,
        occasion -> Text,
    }
}

diesel::table! {
    items (id) {
        id -> Uuid,
        owner_id -> Text,
        kind -> Text,
        title -> Text,
        description -> Text,
        fields_seq -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    item_submissions (id) {
        id -> Uuid,
        seq -> Int8,
        item_id -> Uuid,
        owner_id -> Text,
        idempotency_key -> Text,
        request_digest -> Text,
        title -> Text,
        description -> Text,
        state -> Text,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    item_files (id) {
        id -> Uuid,
        item_id -> Uuid,
        current_version -> Nullable<Int4>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    submission_files (submission_id, upload_id) {
        submission_id -> Uuid,
        upload_id -> Uuid,
        file_id -> Uuid,
        position -> Int4,
    }
}

diesel::table! {
    stored_objects (md5_hex) {
        md5_hex -> Text,
        sha256_hex -> Text,
        size_bytes -> Int8,
        object_key -> Text,
        created_at -> Timestamptz,
        verdict -> Text,
        signature -> Nullable<Text>,
        engine_version -> Nullable<Text>,
        signature_version -> Nullable<Int8>,
        scanned_at -> Nullable<Timestamptz>,
        quarantine_key -> Nullable<Text>,
        quarantined_at -> Nullable<Timestamptz>,
        quarantine_moved_at -> Nullable<Timestamptz>,
        standing -> Text,
        held_key -> Nullable<Text>,
        held_at -> Nullable<Timestamptz>,
        held_moved_at -> Nullable<Timestamptz>,
        clean_under_version -> Nullable<Int8>,
        released_by -> Nullable<Text>,
        release_reason -> Nullable<Text>,
        released_signature -> Nullable<Text>,
        released_at -> Nullable<Timestamptz>,
        confirmed_by -> Nullable<Text>,
    }
}

diesel::table! {
    object_events (id) {
        id -> Int8,
        md5_hex -> Text,
        cause -> Text,
        actor -> Text,
        detail -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    rescan_runs (signature_version) {
        signature_version -> Int8,
        engine_version -> Text,
        state -> Text,
        objects_total -> Int4,
        objects_done -> Int4,
        bytes_total -> Int8,
        bytes_done -> Int8,
        infected_found -> Int4,
        started_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    file_versions (file_id, version) {
        file_id -> Uuid,
        version -> Int4,
        upload_id -> Uuid,
        submission_id -> Uuid,
        md5_hex -> Text,
        sha256_hex -> Text,
        size_bytes -> Int8,
        file_name -> Text,
        content_type -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    item_grants (item_id, user_id) {
        item_id -> Uuid,
        user_id -> Text,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    upload_events (id) {
        id -> Int8,
        upload_id -> Uuid,
        from_state -> Nullable<Text>,
        to_state -> Text,
        cause -> Text,
        attempt -> Nullable<Int4>,
        actor -> Text,
        detail -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    submission_events (id) {
        id -> Int8,
        submission_id -> Uuid,
        from_state -> Nullable<Text>,
        to_state -> Text,
        cause -> Text,
        attempt -> Nullable<Int4>,
        actor -> Text,
        detail -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::joinable!(upload_parts -> uploads (upload_id));
diesel::joinable!(upload_scans -> uploads (upload_id));
diesel::joinable!(upload_media -> uploads (upload_id));
diesel::joinable!(upload_previews -> uploads (upload_id));
diesel::joinable!(notifications -> uploads (upload_id));
diesel::joinable!(upload_progress -> uploads (upload_id));
diesel::joinable!(upload_metadata -> uploads (upload_id));
diesel::joinable!(upload_events -> uploads (upload_id));
diesel::joinable!(submission_events -> item_submissions (submission_id));
diesel::joinable!(item_submissions -> items (item_id));
diesel::joinable!(item_files -> items (item_id));
diesel::joinable!(submission_files -> item_submissions (submission_id));
diesel::joinable!(submission_files -> uploads (upload_id));
diesel::joinable!(file_versions -> item_files (file_id));
diesel::joinable!(file_versions -> stored_objects (md5_hex));
diesel::joinable!(item_grants -> items (item_id));
diesel::joinable!(object_events -> stored_objects (md5_hex));
diesel::allow_tables_to_appear_in_same_query!(
    object_events,
    items,
    item_submissions,
    item_files,
    submission_files,
    stored_objects,
    file_versions,
    item_grants,
    rescan_runs,
    uploads,
    upload_parts,
    upload_progress,
    upload_metadata,
    upload_scans,
    upload_media,
    upload_previews,
    notifications,
    upload_events,
    submission_events
);
