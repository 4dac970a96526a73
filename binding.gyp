{
  "targets": [
    {
      "target_name": "vecvault",
      "sources": ["<!@(node scripts/gyp-sources.js)"],
      "include_dirs": ["csrc"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O3", "-fvisibility=hidden", "<!@(pkg-config --cflags libsodium libcbor)"],
      "cflags_c": ["-std=c11"],
      "libraries": ["<!@(pkg-config --libs libsodium libcbor)", "-lpthread", "-lm"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=c11", "-Wall", "-Wextra", "-O3", "<!@(pkg-config --cflags libsodium libcbor)"]
      }
    }
  ]
}
