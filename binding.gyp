{
  "variables": {
    "vv_prebuild%": "<!(node -p \"process.env.VECVAULT_PREBUILD === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "vecvault",
      "sources": ["<!@(node scripts/gyp-sources.js)"],
      "include_dirs": ["csrc", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O3", "-fvisibility=hidden", "<!@(pkg-config --cflags libsodium libcbor)"],
      "cflags_c": ["-std=c11"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs libsodium libcbor)", "-lpthread", "-lm"],
      "conditions": [
        ["OS=='linux' and vv_prebuild==1", {
          "ldflags": ["-Wl,-rpath,'$$ORIGIN'"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CFLAGS": ["-std=c11", "-Wall", "-Wextra", "-O3", "<!@(pkg-config --cflags libsodium libcbor)"],
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-Wall", "-Wextra", "-O3", "<!@(pkg-config --cflags libsodium libcbor)"]
      }
    }
  ]
}
