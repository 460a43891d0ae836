//! The closed vocabularies of ECS's task-definition JSON (network modes, log
//! drivers, ulimit names, ...), each a Rust enum that serialises to exactly
//! the string ECS uses.
//!
//! An unknown value fails deserialisation with serde's `unknown variant`
//! error, which `parse.rs` reports as an InvalidParameterException at the
//! field's path.

use std::fmt;

/// Declares an enum whose variants (de)serialise as the given strings,
/// with `as_str`, `ALL` and `Display`.
macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const NAMES: &'static [&'static str] = &[$($s),+];

            /// The string ECS uses for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "one of {}", $name::NAMES.join(", "))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        match v {
                            $($s => Ok($name::$variant),)+
                            _ => Err(E::unknown_variant(v, $name::NAMES)),
                        }
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

str_enum! {
    /// `networkMode`. orca's default when absent is `awsvpc` (see `defaults.rs`).
    NetworkMode { None => "none", Bridge => "bridge", Awsvpc => "awsvpc", Host => "host" }
}

str_enum! {
    /// `pidMode`.
    PidMode { Host => "host", Task => "task" }
}

str_enum! {
    /// `ipcMode`.
    IpcMode { Host => "host", Task => "task", None => "none" }
}

str_enum! {
    /// `requiresCompatibilities` entries and `compatibilities`.
    Compatibility { Ec2 => "EC2", Fargate => "FARGATE", External => "EXTERNAL" }
}

str_enum! {
    /// `portMappings[].protocol`; the default is `tcp`.
    TransportProtocol { Tcp => "tcp", Udp => "udp" }
}

str_enum! {
    /// `portMappings[].appProtocol`.
    ApplicationProtocol { Http => "http", Http2 => "http2", Grpc => "grpc" }
}

str_enum! {
    /// `dependsOn[].condition`.
    ContainerCondition {
        Start => "START",
        Complete => "COMPLETE",
        Success => "SUCCESS",
        Healthy => "HEALTHY",
    }
}

str_enum! {
    /// `logConfiguration.logDriver`.
    LogDriver {
        JsonFile => "json-file",
        Syslog => "syslog",
        Journald => "journald",
        Gelf => "gelf",
        Fluentd => "fluentd",
        Awslogs => "awslogs",
        Splunk => "splunk",
        Awsfirelens => "awsfirelens",
    }
}

str_enum! {
    /// `ulimits[].name`.
    UlimitName {
        Core => "core",
        Cpu => "cpu",
        Data => "data",
        Fsize => "fsize",
        Locks => "locks",
        Memlock => "memlock",
        Msgqueue => "msgqueue",
        Nice => "nice",
        Nofile => "nofile",
        Nproc => "nproc",
        Rss => "rss",
        Rtprio => "rtprio",
        Rttime => "rttime",
        Sigpending => "sigpending",
        Stack => "stack",
    }
}

str_enum! {
    /// `resourceRequirements[].type`.
    ResourceType { Gpu => "GPU", InferenceAccelerator => "InferenceAccelerator" }
}

str_enum! {
    /// `environmentFiles[].type`.
    EnvironmentFileType { S3 => "s3" }
}

str_enum! {
    /// `placementConstraints[].type`; task definitions accept only `memberOf`.
    PlacementConstraintType { MemberOf => "memberOf", DistinctInstance => "distinctInstance" }
}

str_enum! {
    /// `versionConsistency`.
    VersionConsistency { Enabled => "enabled", Disabled => "disabled" }
}

str_enum! {
    /// `dockerVolumeConfiguration.scope`.
    Scope { Task => "task", Shared => "shared" }
}

str_enum! {
    /// `efsVolumeConfiguration.transitEncryption` and `authorizationConfig.iam`.
    EfsSetting { Enabled => "ENABLED", Disabled => "DISABLED" }
}

str_enum! {
    /// `firelensConfiguration.type`.
    FirelensConfigurationType { Fluentd => "fluentd", Fluentbit => "fluentbit" }
}

str_enum! {
    /// `proxyConfiguration.type`.
    ProxyConfigurationType { Appmesh => "APPMESH" }
}

str_enum! {
    /// `runtimePlatform.cpuArchitecture`.
    CpuArchitecture { X86_64 => "X86_64", Arm64 => "ARM64" }
}

str_enum! {
    /// `runtimePlatform.operatingSystemFamily`.
    OsFamily {
        Linux => "LINUX",
        WindowsServer2016Full => "WINDOWS_SERVER_2016_FULL",
        WindowsServer2019Full => "WINDOWS_SERVER_2019_FULL",
        WindowsServer2019Core => "WINDOWS_SERVER_2019_CORE",
        WindowsServer2004Core => "WINDOWS_SERVER_2004_CORE",
        WindowsServer20H2Core => "WINDOWS_SERVER_20H2_CORE",
        WindowsServer2022Full => "WINDOWS_SERVER_2022_FULL",
        WindowsServer2022Core => "WINDOWS_SERVER_2022_CORE",
        WindowsServer2025Full => "WINDOWS_SERVER_2025_FULL",
        WindowsServer2025Core => "WINDOWS_SERVER_2025_CORE",
    }
}

str_enum! {
    /// `linuxParameters.devices[].permissions` entries.
    DevicePermission { Read => "read", Write => "write", Mknod => "mknod" }
}
