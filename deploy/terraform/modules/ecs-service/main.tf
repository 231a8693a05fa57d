# One Fargate service behind a load balancer: its task definition, log group,
# security group, IAM roles, and (CODE_DEPLOY) its CodeDeploy application and
# blue/green deployment group.
#
# Least privilege throughout: the container runs as a non-root user on a read-only
# root file system with every capability dropped; its security group admits only
# the load balancer, on the container port; the execution role may pull from one
# repository, write to one log group and read the listed secrets; the task role has
# no permissions; CodeDeploy's role may act on this service, its target groups and
# listeners only. No policy here grants a `*` action.

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  blue_green = var.deployment_controller == "CODE_DEPLOY"
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  service_id = one(concat(aws_ecs_service.rolling[*].id, aws_ecs_service.blue_green[*].id))
  ssm_arns   = [for arn in values(var.secrets) : arn if startswith(arn, "arn:${local.partition}:ssm:")]
  sm_arns    = [for arn in values(var.secrets) : arn if startswith(arn, "arn:${local.partition}:secretsmanager:")]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# --- IAM ---------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The role ECS itself uses to start the task: pull the image, ship logs, fetch secrets.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name = "pull-image-write-logs"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "EcrLogin"
        Effect = "Allow"
        Action = ["ecr:GetAuthorizationToken"]
        # hoist:ignore=HL-TF-006 ecr:GetAuthorizationToken has no resource-level permissions
        Resource = "*"
      },
      {
        Sid      = "PullImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
        Resource = [var.ecr_repository_arn]
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
      },
    ]
  })
}

# Reading exactly the secrets the container is given, when it is given any.
resource "aws_iam_role_policy" "execution_parameters" {
  count = length(local.ssm_arns) > 0 ? 1 : 0

  name = "read-parameters"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["ssm:GetParameters"]
        Resource = local.ssm_arns
      },
    ]
  })
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = length(local.sm_arns) > 0 ? 1 : 0

  name = "read-secrets"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.sm_arns
      },
    ]
  })
}

# The role the application runs with. It needs no AWS access; attach policies to
# it (aws_iam_role_policy with role = task_role_name) for what it does need.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

# --- Network -----------------------------------------------------------------

resource "aws_security_group" "service" {
  name        = "${var.name}-tasks"
  description = "Tasks of ${var.name}: the load balancer in on the container port, HTTPS out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-tasks" })
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.service.id
  description                  = "From the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = var.alb_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = toset(var.egress_cidrs)

  security_group_id = aws_security_group.service.id
  description       = "HTTPS to ECR, CloudWatch Logs and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# The load balancer's only way out: to these tasks, on the container port.
resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = var.alb_security_group_id
  description                  = "To the tasks of ${var.name}"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.service.id
}

# --- Task definition and service ---------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = var.container_name
      image                  = var.image
      essential              = true
      user                   = var.user
      readonlyRootFilesystem = true
      privileged             = false
      linuxParameters = {
        capabilities = { drop = ["ALL"] }
      }
      portMappings = [
        { containerPort = var.container_port, protocol = "tcp" }
      ]
      environment = [for k, v in var.environment : { name = k, value = v }]
      secrets     = [for k, v in var.secrets : { name = k, valueFrom = v }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = var.name
        }
      }
    }
  ])

  tags = var.tags
}

# Rolling updates (ECS controller), rolled back by the circuit breaker when new
# tasks keep failing.
resource "aws_ecs_service" "rolling" {
  count = local.blue_green ? 0 : 1

  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.health_check_grace_period_seconds
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true

  deployment_controller {
    type = "ECS"
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  # hoist deploy registers new task definition revisions (a new image) and points
  # the service at them; Terraform only made the first. Without this, every apply
  # would roll the service back to Terraform's revision. The load balancer stays
  # Terraform's: with the ECS controller it does not change under a deployment, so
  # a change here is a real one and UpdateService applies it.
  lifecycle {
    ignore_changes = [task_definition]
  }

  tags = var.tags
}

# Blue/green (CODE_DEPLOY controller): CodeDeploy starts the new task set, shifts
# the listeners to the other target group and rolls back on failure. The circuit
# breaker is an ECS-controller feature and is not allowed here.
resource "aws_ecs_service" "blue_green" {
  count = local.blue_green ? 1 : 0

  name                              = var.name
  cluster                           = var.cluster_arn
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = var.health_check_grace_period_seconds
  propagate_tags                    = "SERVICE"
  enable_ecs_managed_tags           = true

  deployment_controller {
    type = "CODE_DEPLOY"
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  # Each CodeDeploy deployment brings its own task definition and, every other
  # time, serves from the green target group: both are CodeDeploy's after the
  # first deployment, and ECS refuses to change either through UpdateService on a
  # CODE_DEPLOY service. Terraform reverting them would fail or undo a release.
  lifecycle {
    ignore_changes = [task_definition, load_balancer]
  }

  tags = var.tags
}

# --- CodeDeploy (blue/green) -------------------------------------------------

data "aws_iam_policy_document" "codedeploy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codedeploy.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "codedeploy" {
  count = local.blue_green ? 1 : 0

  name               = "${var.name}-codedeploy"
  assume_role_policy = data.aws_iam_policy_document.codedeploy_assume.json
  tags               = var.tags
}

# What AWSCodeDeployRoleForECS allows, narrowed to this service, its target groups
# and listeners (no Lambda hooks, alarms, SNS triggers or S3 AppSpecs).
resource "aws_iam_role_policy" "codedeploy" {
  count = local.blue_green ? 1 : 0

  name = "blue-green-${var.name}"
  role = aws_iam_role.codedeploy[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "TaskSets"
        Effect = "Allow"
        Action = ["ecs:DescribeServices", "ecs:CreateTaskSet", "ecs:UpdateServicePrimaryTaskSet", "ecs:DeleteTaskSet"]
        Resource = [
          local.service_id,
          "${replace(local.service_id, ":service/", ":task-set/")}/*",
        ]
      },
      {
        Sid    = "DescribeLoadBalancing"
        Effect = "Allow"
        Action = ["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules"]
        # hoist:ignore=HL-TF-006 ELB Describe* actions have no resource-level permissions
        Resource = "*"
      },
      {
        Sid      = "ShiftTraffic"
        Effect   = "Allow"
        Action   = ["elasticloadbalancing:ModifyListener"]
        Resource = compact([var.prod_listener_arn, var.test_listener_arn])
      },
      {
        Sid      = "PassTaskRoles"
        Effect   = "Allow"
        Action   = ["iam:PassRole"]
        Resource = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
        Condition = {
          StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" }
        }
      },
    ]
  })
}

resource "aws_codedeploy_app" "this" {
  count = local.blue_green ? 1 : 0

  name             = var.name
  compute_platform = "ECS"
  tags             = var.tags
}

resource "aws_codedeploy_deployment_group" "this" {
  count = local.blue_green ? 1 : 0

  app_name               = aws_codedeploy_app.this[0].name
  deployment_group_name  = var.name
  service_role_arn       = aws_iam_role.codedeploy[0].arn
  deployment_config_name = var.codedeploy_config_name

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]
  }

  deployment_style {
    deployment_option = "WITH_TRAFFIC_CONTROL"
    deployment_type   = "BLUE_GREEN"
  }

  blue_green_deployment_config {
    deployment_ready_option {
      action_on_timeout = "CONTINUE_DEPLOYMENT"
    }
    terminate_blue_instances_on_deployment_success {
      action                           = "TERMINATE"
      termination_wait_time_in_minutes = var.termination_wait_minutes
    }
  }

  ecs_service {
    cluster_name = var.cluster_name
    service_name = local.blue_green ? aws_ecs_service.blue_green[0].name : null
  }

  load_balancer_info {
    target_group_pair_info {
      prod_traffic_route {
        listener_arns = [var.prod_listener_arn]
      }
      test_traffic_route {
        listener_arns = [var.test_listener_arn]
      }
      dynamic "target_group" {
        for_each = var.target_group_names
        content {
          name = target_group.value
        }
      }
    }
  }

  # CodeDeploy checks that its role can act when the group is made.
  depends_on = [aws_iam_role_policy.codedeploy]

  tags = var.tags
}
