//! The pipeline's ECS target: what an environment with `target: ecs` asks of
//! hoist-aws, shared with `hoist deploy --ecs`. hoist's strategies map onto what
//! ECS and CodeDeploy do: `rolling` is ECS's rolling update (its percentages set
//! only when they differ from ECS's defaults, 100 and 200), `blue-green` is
//! CodeDeploy's ECSAllAtOnce, `canary` and `linear` are CodeDeploy's time-based
//! shifts.

use std::time::Duration;

use hoist_aws::codedeploy::{CodeDeployTarget, Traffic};
use hoist_aws::ecs::{Deploy, EcsService};
use hoist_deploy::spec::Strategy;
use hoist_pipeline_spec::hoistfile::EcsSettings;

/// The ECS service `settings` name.
pub fn target(settings: &EcsSettings) -> EcsService {
    EcsService {
        region: settings.region.clone(),
        cluster: settings.cluster.clone(),
        service: settings.service.clone(),
    }
}

/// The CodeDeploy deployment group of `settings`, if any.
pub fn codedeploy(settings: &EcsSettings) -> Option<CodeDeployTarget> {
    settings.codedeploy.as_ref().map(|cd| CodeDeployTarget {
        application: cd.application.clone(),
        deployment_group: cd.deployment_group.clone(),
        hooks: cd
            .hooks
            .iter()
            .map(|(h, f)| (h.clone(), f.clone()))
            .collect(),
        container_port: cd.container_port,
    })
}

/// ECS's rolling percentages (`None`: keep the service's) and CodeDeploy's traffic
/// shift for `strategy`.
pub fn strategy(strategy: Option<&Strategy>) -> (Option<(i32, i32)>, Option<Traffic>) {
    let pct = |p: u32| i32::try_from(p).unwrap_or(i32::MAX);
    match strategy {
        None => (None, None),
        Some(Strategy::Rolling {
            min_healthy_percent,
            max_percent,
        }) => {
            if min_healthy_percent.0 == 100 && *max_percent == 200 {
                (None, None)
            } else {
                (Some((pct(min_healthy_percent.0), pct(*max_percent))), None)
            }
        }
        Some(Strategy::BlueGreen { .. }) => (None, Some(Traffic::AllAtOnce)),
        Some(Strategy::Canary { percent, bake }) => (
            None,
            Some(Traffic::Canary {
                percent: u8::try_from(percent.0).unwrap_or(100),
                interval: *bake,
            }),
        ),
        Some(Strategy::Linear { percent, interval }) => (
            None,
            Some(Traffic::Linear {
                percent: u8::try_from(percent.0).unwrap_or(100),
                interval: *interval,
            }),
        ),
    }
}

/// The deployment of `image` that `settings` and `strategy` ask for, followed for
/// `follow` (`None`: not followed).
pub fn request(
    settings: &EcsSettings,
    strategy: Option<&Strategy>,
    image: &str,
    follow: Option<Duration>,
) -> Deploy {
    let (rolling, traffic) = self::strategy(strategy);
    Deploy {
        image: image.to_owned(),
        container: settings.container.clone(),
        codedeploy: codedeploy(settings),
        traffic,
        rolling,
        follow,
        poll: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strategies_map_onto_ecs_and_codedeploy() {
        let parse = |s: &str| s.parse::<Strategy>().unwrap();
        assert_eq!(
            strategy(Some(&parse("rolling"))),
            (None, None),
            "ECS's defaults kept"
        );
        assert_eq!(
            strategy(Some(&parse("rolling:50%:150%"))),
            (Some((50, 150)), None)
        );
        assert_eq!(
            strategy(Some(&parse("blue-green"))),
            (None, Some(Traffic::AllAtOnce))
        );
        assert_eq!(
            strategy(Some(&parse("canary:10%:5m"))),
            (
                None,
                Some(Traffic::Canary {
                    percent: 10,
                    interval: Duration::from_secs(300)
                })
            )
        );
        assert_eq!(
            strategy(Some(&parse("linear:25%:1m"))).1,
            Some(Traffic::Linear {
                percent: 25,
                interval: Duration::from_secs(60)
            })
        );
    }
}
