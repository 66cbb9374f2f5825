-- The request path's AuditEvents as facts in typed columns, the resource built when read (#18).
-- Measured under audited reads, building each event's JSON, serialising it and compressing the
-- row were about a fifth of the server's CPU and most of the row's 2.7 kB. A row now holds what
-- the request knew (who, what, the outcome, the purpose, the request) and its search keys; the
-- `audit_resource` view builds the AuditEvent from them (`audit_event_body`) and the keys of the
-- values nearly every event carries (`audit_event_routine`), which are not stored at all.
--
-- Rows with a body (events written before, and those the server stores whole: sign-ins, token
-- issue, the audit trail's own moves) are served as they are. The facts (store::AuditFacts):
--   interaction  the FHIR interaction (AuditEvent.subtype)
--   action       C R U D E
--   outcome      0 4 8
--   outcome_desc why it failed
--   purpose      purpose of use (TREAT unless break-glass or a claim)
--   review_reason break-glass or claim reason (flags the event for review)
--   request_id   the request's id
--   address      the client's network address
--   sensitive    about information withheld from patients (audit-sensitive)
--   user_sub, fhir_user, user_name, role, jti, client_id: the caller (none when refused)
--   patient      the patient the event is about
--   resources    the versions read or written, Type/id/_history/v
--   query        the search or history query
-- The body the view builds is pinned to the one the server built before by a test that stores
-- every shape of record both ways (server: narrow_audit_rows).
ALTER TABLE audit_event
    ALTER COLUMN body DROP NOT NULL,
    ADD COLUMN interaction   TEXT,
    ADD COLUMN action        TEXT,
    ADD COLUMN outcome       TEXT,
    ADD COLUMN outcome_desc  TEXT,
    ADD COLUMN purpose       TEXT,
    ADD COLUMN review_reason TEXT,
    ADD COLUMN request_id    TEXT,
    ADD COLUMN address       TEXT,
    ADD COLUMN sensitive     BOOLEAN,
    ADD COLUMN user_sub      TEXT,
    ADD COLUMN fhir_user     TEXT,
    ADD COLUMN user_name     TEXT,
    ADD COLUMN role          TEXT,
    ADD COLUMN jti           TEXT,
    ADD COLUMN client_id     TEXT,
    ADD COLUMN patient       TEXT,
    ADD COLUMN resources     TEXT[],
    ADD COLUMN query         TEXT;

-- An instant as the server writes one: UTC, milliseconds.
CREATE FUNCTION audit_instant(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The AuditEvent of a narrow row, as authz::audit::AuditRecord builds it.
CREATE FUNCTION audit_event_body(a audit_event) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT convert_to(json_strip_nulls(json_build_object(
    'resourceType', 'AuditEvent',
    'id', a.id,
    'meta', json_build_object(
        'versionId', '1',
        'lastUpdated', audit_instant(a.last_updated),
        'tag', CASE WHEN a.review_reason IS NOT NULL THEN json_build_array(json_build_object(
            'system', 'https://invicta.example.org/fhir/CodeSystem/audit-flag',
            'code', 'review', 'display', 'Flagged for privacy review')) END,
        'security', CASE WHEN a.sensitive THEN json_build_array(json_build_object(
            'system', 'https://invicta.example.org/fhir/CodeSystem/access-label',
            'code', 'audit-sensitive')) END),
    'type', json_build_object(
        'system', 'http://terminology.hl7.org/CodeSystem/audit-event-type',
        'code', 'rest', 'display', 'RESTful Operation'),
    'subtype', json_build_array(json_build_object(
        'system', 'http://hl7.org/fhir/restful-interaction', 'code', a.interaction)),
    'action', a.action,
    'recorded', audit_instant(a.recorded),
    'outcome', a.outcome,
    'purposeOfEvent', json_build_array(json_build_object('coding', json_build_array(
        json_build_object('system', 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
                          'code', a.purpose)))),
    'agent', (SELECT json_agg(x ORDER BY n) FROM (
        SELECT 1, json_build_object(
            'type', json_build_object('coding', json_build_array(json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
                'code', 'IRCP', 'display', 'information recipient'))),
            'role', json_build_array(json_build_object('coding', json_build_array(
                json_build_object('system',
                    'https://invicta.example.org/fhir/CodeSystem/care-record-role',
                    'code', a.role)))),
            'who', json_build_object(
                'identifier', json_build_object(
                    'system', 'https://invicta.example.org/fhir/Id/user', 'value', a.user_sub),
                'reference', a.fhir_user,
                'display', a.user_name),
            'requestor', true,
            'policy', CASE WHEN a.jti IS NOT NULL
                THEN json_build_array('urn:invicta:token:' || a.jti) END,
            'location', CASE WHEN a.org IS NOT NULL
                THEN json_build_object('display', 'ODS ' || a.org) END,
            'altId', a.org,
            'network', CASE WHEN a.address IS NOT NULL
                THEN json_build_object('address', a.address, 'type', '2') END)
        WHERE a.user_sub IS NOT NULL
        UNION ALL
        SELECT 2, json_build_object(
            'type', json_build_object('coding', json_build_array(json_build_object(
                'system', 'http://dicom.nema.org/resources/ontology/DCM',
                'code', '110150', 'display', 'Application'))),
            'who', json_build_object('identifier', json_build_object(
                'system', 'https://invicta.example.org/fhir/Id/oauth-client',
                'value', a.client_id)),
            'requestor', false)
        WHERE a.user_sub IS NOT NULL AND a.client_id IS NOT NULL
        UNION ALL
        SELECT 1, json_build_object(
            'type', json_build_object('coding', json_build_array(json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
                'code', 'IRCP'))),
            'who', json_build_object('display', 'unauthenticated client'),
            'requestor', true,
            'network', CASE WHEN a.address IS NOT NULL
                THEN json_build_object('address', a.address, 'type', '2') END)
        WHERE a.user_sub IS NULL
    ) AS agents(n, x)),
    'source', json_build_object(
        'site', 'Invicta',
        'observer', json_build_object('display', 'Invicta FHIR server'),
        'type', json_build_array(json_build_object(
            'system', 'http://terminology.hl7.org/CodeSystem/security-source-type',
            'code', '4', 'display', 'Application Server'))),
    'entity', (SELECT json_agg(x ORDER BY n, o) FROM (
        SELECT 1, 0::bigint, json_build_object(
            'what', json_build_object('reference', 'Patient/' || a.patient),
            'type', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
                'code', '1', 'display', 'Person'),
            'role', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/object-role',
                'code', '1', 'display', 'Patient'))
        WHERE a.patient IS NOT NULL
        UNION ALL
        SELECT 2, r.o, json_build_object(
            'what', json_build_object('reference', r.ref),
            'type', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
                'code', '2', 'display', 'System Object'),
            'role', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/object-role',
                'code', '4', 'display', 'Domain Resource'))
        FROM unnest(a.resources) WITH ORDINALITY AS r(ref, o)
        UNION ALL
        SELECT 3, 0, json_build_object(
            'type', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
                'code', '2', 'display', 'System Object'),
            'role', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/object-role',
                'code', '24', 'display', 'Query'),
            -- PostgreSQL's base64 breaks lines every 76 characters; FHIR's has no breaks.
            'query', translate(encode(convert_to(a.query, 'UTF8'), 'base64'), E'\n', ''))
        WHERE a.query IS NOT NULL
        UNION ALL
        SELECT 4, 0, json_build_object(
            'what', json_build_object('identifier', json_build_object(
                'system', 'https://invicta.example.org/fhir/Id/request-id',
                'value', a.request_id)),
            'type', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
                'code', '2', 'display', 'System Object'),
            'role', json_build_object(
                'system', 'http://terminology.hl7.org/CodeSystem/object-role',
                'code', '3', 'display', 'Report'),
            'detail', CASE WHEN a.review_reason IS NOT NULL THEN json_build_array(
                json_build_object('type', 'reason', 'valueString', a.review_reason)) END)
    ) AS entities(n, o, x)),
    'outcomeDesc', a.outcome_desc
))::text, 'UTF8')
$$;

-- The search keys of a narrow row's routine values (store::audit_keys::ROUTINE's parameters),
-- in store::audit_keys's format: `param·code` and `param·system·code`, `·` being U+001F. Every
-- value of those parameters is here, routine or not; the server also stores the keys of those
-- that are not routine in `keys`, under the index, so a search finds them there.
CREATE FUNCTION audit_event_routine(a audit_event) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH tokens(p, s, c) AS (
    SELECT 'type', 'http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest'
    UNION ALL SELECT 'site', '', 'Invicta'
    UNION ALL SELECT 'action', '', a.action
    UNION ALL SELECT 'outcome', '', a.outcome
    UNION ALL SELECT 'purpose', 'http://terminology.hl7.org/CodeSystem/v3-ActReason', a.purpose
    UNION ALL SELECT 'subtype', 'http://hl7.org/fhir/restful-interaction', a.interaction
    UNION ALL SELECT 'entity-type', 'http://terminology.hl7.org/CodeSystem/audit-entity-type', '1'
        WHERE a.patient IS NOT NULL
    UNION ALL SELECT 'entity-role', 'http://terminology.hl7.org/CodeSystem/object-role', '1'
        WHERE a.patient IS NOT NULL
    UNION ALL SELECT 'entity-type', 'http://terminology.hl7.org/CodeSystem/audit-entity-type', '2'
    UNION ALL SELECT 'entity-role', 'http://terminology.hl7.org/CodeSystem/object-role', '3'
    UNION ALL SELECT 'entity-role', 'http://terminology.hl7.org/CodeSystem/object-role', '4'
        WHERE cardinality(a.resources) > 0
    UNION ALL SELECT 'entity-role', 'http://terminology.hl7.org/CodeSystem/object-role', '24'
        WHERE a.query IS NOT NULL
)
SELECT array_agg(k ORDER BY k) FROM (
    SELECT p || E'\x1f' || c FROM tokens WHERE c <> ''
    UNION
    SELECT p || E'\x1f' || s || E'\x1f' || c FROM tokens WHERE c <> ''
) AS keys(k)
$$;

CREATE OR REPLACE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method,
       COALESCE(a.body, audit_event_body(a)) AS body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded,
       CASE WHEN a.body IS NULL THEN audit_event_routine(a) ELSE a.routine END AS routine
FROM audit_event a;
