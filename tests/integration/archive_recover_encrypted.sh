#!/usr/bin/env bash
# archive_recover_encrypted: archive_recover.sh with cipher-type=aes-256-gcm
# (cipher-pass in the config file) and compress-type=none; additionally the
# encrypted objects must not contain plaintext WAL.
export UW_AR_COMPRESS=none UW_AR_CIPHER=aes-256-gcm
export UW_TEST_NAME=${UW_TEST_NAME:-archive_recover_encrypted}
exec bash "$(dirname "$0")/archive_recover.sh" "$@"
