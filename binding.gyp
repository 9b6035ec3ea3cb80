{
  "variables": {
    "lmdb_dir": "<!(node native/find-lmdb.js)"
  },
  "targets": [
    {
      "target_name": "txarray",
      "sources": [
        "native/binding/addon.cc",
        "native/binding/args.cc",
        "native/binding/array_wrap.cc",
        "native/binding/commit.cc",
        "native/binding/commit_log.cc",
        "native/binding/follower_wrap.cc",
        "native/binding/js_errors.cc",
        "native/binding/remote_apply.cc",
        "native/binding/remote_blocks.cc",
        "native/binding/array_stubs.cc",
        "native/binding/segments.cc",
        "native/binding/session_wrap.cc",
        "native/binding/store_figures.cc",
        "native/binding/view_registry.cc",
        "native/binding/waiter_wrap.cc",
        "native/engine/block_format.cc",
        "native/engine/block_commit.cc",
        "native/engine/lmdb_block_store.cc",
        "native/engine/change_log.cc",
        "native/engine/commit_follower.cc",
        "native/engine/commit_signal.cc",
        "native/engine/crc32c.cc",
        "native/engine/env.cc",
        "native/engine/env_stats.cc",
        "native/engine/error.cc",
        "native/engine/pread_batch.cc",
        "native/engine/remote_apply.cc",
        "native/engine/remote_segments.cc",
        "native/engine/remote_fill.cc",
        "native/engine/cache_flush.cc",
        "native/engine/session.cc",
        "native/engine/snapshot.cc",
        "native/engine/snapshot_source.cc",
        "native/engine/staged_blocks.cc",
        "native/engine/store_check.cc",
        "native/engine/store_files.cc",
        "native/engine/store_identity.cc",
        "native/engine/strided.cc",
        "native/engine/tracked_array.cc",
        "native/engine/view_figures.cc",
        "native/engine/written_slack.cc",
        "native/vmem/block_mapping.cc",
        "native/vmem/fault_path.cc",
        "native/vmem/map_budget.cc",
        "native/vmem/region.cc",
        "native/vmem/region_state.cc",
        "native/vmem/scan_windows.cc",
        "native/vmem/scan_write_fault.cc",
        "native/vmem/registry.cc",
        "native/vmem/sigsegv_service.cc",
        "native/vmem/spill.cc",
        "native/vmem/uffd_service.cc",
        "native/vmem/write_scan.cc",
        "<(lmdb_dir)/mdb.c",
        "<(lmdb_dir)/midl.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(lmdb_dir)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags": ["-O2", "-Wall", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "conditions": [
        ["OS=='linux'", { "libraries": ["-lpthread"] }]
      ]
    }
  ]
}
