# An ECS cluster for Fargate services, with Container Insights on (per-task CPU,
# memory and network metrics in CloudWatch).

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}
