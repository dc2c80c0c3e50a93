#include "filters/person_properties.h"

namespace edgeguard::privacy {

const std::vector<AllowedProperty>& posthog_person_properties() {
    // `$`-prefixed names that posthog-js, the mobile SDKs and ingestion set on persons. None of them holds a
    // person's identity by design; URLs and referrers are scanned (and their sensitive query values
    // redacted) like any listed value.
    static const std::vector<AllowedProperty> kList = [] {
        static const char* const kGlobs[] = {
            "$initial_*",        "$geoip_*",          "$os",
            "$os_name",          "$os_version",       "$browser",
            "$browser_version",  "$browser_language", "$browser_language_prefix",
            "$device_type",      "$device",           "$device_id",
            "$device_manufacturer", "$device_model",  "$device_name",
            "$app_name",         "$app_version",      "$app_build",
            "$app_namespace",    "$lib",              "$lib_version",
            "$locale",           "$timezone",         "$timezone_offset",
            "$screen_height",    "$screen_width",     "$screen_density",
            "$viewport_height",  "$viewport_width",   "$current_url",
            "$pathname",         "$host",             "$referrer",
            "$referring_domain", "$raw_user_agent",   "$creator_event_uuid",
            "$is_identified",    "$is_emulator",      "$feature/*",
            "$feature_enrollment/*", "$survey_*",     "$last_seen",
            "$utm_*",            "$gclid",            "$fbclid",
            "$group_key",        "$group_type",       "$virt_*",
        };
        std::vector<AllowedProperty> list;
        for (const char* g : kGlobs) list.push_back(AllowedProperty{g, FieldType{FieldType::Kind::Any, {}}});
        return list;
    }();
    return kList;
}

PersonProperties default_person_properties() {
    PersonProperties p;
    p.enabled = true;
    p.allowlist.id = "person_properties";
    p.allowlist.properties = posthog_person_properties();
    return p;
}

}  // namespace edgeguard::privacy
